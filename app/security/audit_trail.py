"""The audit trail served as the FHIR AuditEvent type from its own tables (app/security/audit_store.py).

Read and vread serve the stored bytes (an event has exactly one version); search takes the parameters of
audit_search.py with the engine's result parameters (_count with keyset paging links, _sort=date/-date,
_total, _summary, _elements) and builds its Bundles with the engine's helpers; history lists events as
their one version. Writes never get here: the engine refuses them (403).

Who sees what: system clients with AuditEvent scopes see every event (a SMART launch context narrows them
to that patient); a citizen sees the events about patients they may see (own record, proxies, children
under 12: the access policy's `allowed` patients), and only their own part of an event that concerns
others too (audit.own_part); personnel see no AuditEvents through the clinical API. Looking at the trail
is not itself audited as access to patient data (README, Security), nor is a read of one event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import Select, and_, false, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from app.fhir.bundle import bundle_bytes, entry_bytes
from app.fhir.context import RequestContext
from app.fhir.hooks import ReadEvent
from app.fhir.interactions.history import history_entry, parse_at, parse_count, parse_instant
from app.fhir.interactions.search import (
    SearchRequest,
    as_stored,
    page_cursors,
    page_parameters,
    search_entry,
    search_links,
    single_param,
)
from app.fhir.outcome import Category, FhirError, Issue, operation_outcome, outcome_bytes
from app.fhir.search import paging
from app.fhir.service import FhirService
from app.security.audit import own_part
from app.security.audit_search import SEARCH_PARAMS, about_patients, parse_criteria
from app.security.policy import Policy
from app.security.principal import Principal
from app.security.tables import audit_event, audit_patient
from app.store.repository import CurrentVersion, HistoryRow, SearchRow

TYPE = "AuditEvent"
e = audit_event.c


@dataclass(frozen=True)
class _Access:
    """None: every event in full; otherwise only events about these patients, each in their part."""

    patients: frozenset[str] | None

    def condition(self) -> ColumnElement[bool] | None:
        if self.patients is None:
            return None
        return about_patients(sorted(self.patients)) if self.patients else false()

    def others(self) -> ColumnElement[Any]:
        """Whether an event also concerns patients outside the caller's (then it is shown in part)."""
        if not self.patients:
            return literal(False)
        p = audit_patient.alias()
        return (
            select(p.c.event_id)
            .where(p.c.event_id == e.id, p.c.patient_id.not_in(sorted(self.patients)))
            .exists()
        )

    def shown(self, content: bytes, others: bool) -> bytes:
        if not others or self.patients is None:
            return content
        return orjson.dumps(own_part(orjson.loads(content), self.patients))


EVERY_EVENT = _Access(None)
NO_EVENT = _Access(frozenset())


class AuditTrail:
    """The TypeStore of AuditEvent (app/fhir/type_store.py)."""

    def __init__(self, svc: FhirService) -> None:
        self.svc = svc

    async def _check(
        self,
        ctx: RequestContext,
        interaction: str,
        res_id: str | None = None,
        compartment: tuple[str, str] | None = None,
        pairs: list[tuple[str, str]] | None = None,
    ) -> None:
        """The engine's read hooks: scopes, and a named patient's access, refusals audited as elsewhere."""
        if self.svc.hooks.before_read:
            event = ReadEvent(ctx, interaction, TYPE, res_id, compartment, tuple(pairs or ()))
            await self.svc.hooks.run_before_read(event)

    async def _access(self, ctx: RequestContext, conn: AsyncConnection) -> _Access:
        principal = ctx.principal
        if not isinstance(principal, Principal):
            return EVERY_EVENT  # authentication off, or the server itself
        if principal.kind == "personnel":
            return NO_EVENT  # the audit trail is not clinical data
        policy = self.svc.hooks.visible(ctx)
        if not isinstance(policy, Policy) or policy.templates.allowed is None:
            return EVERY_EVENT
        rows = await conn.execute(policy.templates.allowed, policy.values)
        return _Access(frozenset(row[0] for row in rows if row[0] is not None))

    # -- read, vread ---------------------------------------------------------------------------------
    async def _one(
        self, ctx: RequestContext, res_id: str, caller: AsyncConnection | None
    ) -> tuple[datetime, bytes]:
        async with self.svc.repo.reading(caller) as conn:
            access = await self._access(ctx, conn)
            query = select(e.recorded, e.content, access.others()).where(e.id == res_id)
            visible = access.condition()
            if visible is not None:
                query = query.where(visible)
            row = (await conn.execute(query)).first()
        if row is None:
            raise FhirError(Category.NOT_FOUND, f"{TYPE}/{res_id} is not known")
        return row[0], access.shown(row[1], bool(row[2]))

    async def read(self, ctx: RequestContext, res_id: str, conn: AsyncConnection | None) -> CurrentVersion:
        await self._check(ctx, "read", res_id)
        recorded, content = await self._one(ctx, res_id, conn)
        return CurrentVersion(1, recorded, False, content, 0)

    async def vread(
        self, ctx: RequestContext, res_id: str, version_id: str, conn: AsyncConnection | None
    ) -> HistoryRow:
        await self._check(ctx, "vread", res_id)
        recorded, content = await self._one(ctx, res_id, conn)
        if version_id != "1":
            raise FhirError(Category.NOT_FOUND, f"{TYPE}/{res_id} has no version '{version_id[:20]}'")
        return HistoryRow(0, TYPE, res_id, 1, recorded, "POST", content, 0)

    # -- search ----------------------------------------------------------------------------------------
    async def search(
        self,
        ctx: RequestContext,
        pairs: list[tuple[str, str]],
        path: str,
        strict: bool,
        compartment: tuple[str, str] | None,
        conn: AsyncConnection | None,
    ) -> bytes:
        await self._check(ctx, "search", None, compartment, pairs)
        async with self.svc.repo.reading(conn) as reader:
            return await self._search(ctx, SearchRequest((TYPE,), pairs, path, strict, compartment), reader)

    async def _search(self, ctx: RequestContext, request: SearchRequest, conn: AsyncConnection) -> bytes:
        pairs = request.pairs
        svc = self.svc
        count, summary, elements, total_mode, direction, after = page_parameters(svc, pairs)
        descending = _descending(single_param(pairs, "_sort"))
        criteria = parse_criteria(pairs, request.strict, self.svc.base_url)
        if request.compartment is not None:
            criteria.conditions.append(about_patients([request.compartment[1]]))
        access = await self._access(ctx, conn)
        visible = access.condition()
        where = [*criteria.conditions, *([visible] if visible is not None else [])]

        rows: list[SearchRow] = []
        extra_row = False
        if summary != "count":
            backwards = direction in (paging.PREVIOUS, paging.LAST)
            query = _page(where, access, descending != backwards, _after(after), count + 1)
            found = (await conn.execute(query)).all()
            extra_row = len(found) > count
            found = found[:count]
            if backwards:
                found.reverse()
            rows = [
                SearchRow(
                    0, TYPE, r.id, 1, r.recorded, access.shown(r.content, bool(r.others)), (r.recorded, r.id)
                )
                for r in found
            ]
        total: int | None = None
        if summary == "count" or total_mode != "none":
            if direction is None and not extra_row and summary != "count":
                total = len(rows)  # the first page holds everything
            else:
                total = (
                    await conn.execute(select(func.count()).select_from(audit_event).where(*where))
                ).scalar_one()
        cursors = page_cursors(direction, rows, extra_row)
        entries = [search_entry(svc, ctx, as_stored(r), "match", summary, elements) for r in rows]
        if criteria.warnings:
            issues = [Issue(w, "not-supported", severity="warning") for w in criteria.warnings]
            entries.append(
                entry_bytes({"search": {"mode": "outcome"}}, outcome_bytes(operation_outcome(issues)))
            )
        return bundle_bytes("searchset", entries, search_links(request, ctx, count, cursors), total)

    # -- history ---------------------------------------------------------------------------------------
    async def history(
        self, ctx: RequestContext, res_id: str | None, params: dict[str, str], conn: AsyncConnection | None
    ) -> bytes:
        """An event's history is its one version; the type's history lists the events, newest first."""
        base = f"{ctx.base_url}/{TYPE}"
        if res_id is not None:
            await self._check(ctx, "history-instance", res_id)
            recorded, content = await self._one(ctx, res_id, conn)
            row = HistoryRow(0, TYPE, res_id, 1, recorded, "POST", content, 0)
            links = [("self", f"{base}/{res_id}/_history")]
            return bundle_bytes("history", [history_entry(ctx.base_url, row)], links, 1)
        await self._check(ctx, "history-type")
        count = parse_count(params.get("_count"), self.svc.default_page_size, self.svc.max_page_size)
        since = params.get("_since")
        at = params.get("_at")
        cursor = params.get("_cursor")
        where: list[ColumnElement[bool]] = [e.recorded >= parse_instant("_since", since)] if since else []
        if at:  # an event, never replaced, is current from when it was recorded
            where.append(e.recorded <= parse_at(at)[1])
        async with self.svc.repo.reading(conn) as reader:
            access = await self._access(ctx, reader)
            visible = access.condition()
            where += [visible] if visible is not None else []
            total = (
                await reader.execute(select(func.count()).select_from(audit_event).where(*where))
            ).scalar_one()
            after = _after(paging.decode(cursor)[1]) if cursor else None
            found = (await reader.execute(_page(where, access, True, after, count + 1))).all()
        page = [
            HistoryRow(0, TYPE, r.id, 1, r.recorded, "POST", access.shown(r.content, bool(r.others)), 0)
            for r in found[:count]
        ]
        keep = {"_count": str(count), **({"_since": since} if since else {}), **({"_at": at} if at else {})}
        links = [("self", _url(f"{base}/_history", {**keep, **({"_cursor": cursor} if cursor else {})}))]
        links.append(("first", _url(f"{base}/_history", keep)))
        if len(found) > count and page:
            last = page[-1]
            next_cursor = paging.encode(paging.NEXT, (last.last_updated, last.res_id))
            links.append(("next", _url(f"{base}/_history", {**keep, "_cursor": next_cursor})))
        return bundle_bytes("history", (history_entry(ctx.base_url, r) for r in page), links, total)


def _url(base: str, params: dict[str, str]) -> str:
    return f"{base}?{urlencode(params)}"


def _descending(sort: str | None) -> bool:
    if sort in (None, "date", "_lastUpdated"):
        return False
    if sort in ("-date", "-_lastUpdated"):
        return True
    raise FhirError(
        Category.INVALID, f"Cannot sort AuditEvents by '{sort}': use date or -date", "not-supported"
    )


def _after(keys: tuple[Any, ...] | None) -> tuple[datetime, str] | None:
    if keys is None:
        return None
    if len(keys) != 2 or not isinstance(keys[0], datetime) or not isinstance(keys[1], str):
        raise FhirError(Category.INVALID, "_cursor is not a valid paging cursor", "value")
    return keys[0], keys[1]


def _page(
    where: list[ColumnElement[bool]],
    access: _Access,
    descending: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """One keyset page in (recorded, id) order."""
    query = select(e.id, e.recorded, e.content, access.others().label("others")).where(*where)
    if after is not None:
        at, last_id = after
        if descending:
            query = query.where(or_(e.recorded < at, and_(e.recorded == at, e.id < last_id)))
        else:
            query = query.where(or_(e.recorded > at, and_(e.recorded == at, e.id > last_id)))
    order = (e.recorded.desc(), e.id.desc()) if descending else (e.recorded.asc(), e.id.asc())
    return query.order_by(*order).limit(limit)


def install_audit_trail(svc: FhirService) -> None:
    """AuditEvent is served from the trail's tables; its advertised search parameters are the trail's."""
    audit = svc.registry.types[TYPE]
    audit.search_params = {k: v for k, v in audit.search_params.items() if k in SEARCH_PARAMS}
    audit.index_plan = None
    audit.store = AuditTrail(svc)
