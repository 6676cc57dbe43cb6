"""GET entries (read, vread, history, search) on a given connection, so that a transaction's reads see
its own writes; a batch passes a reader connection."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.bundle import bundle_bytes
from app.fhir.context import RequestContext
from app.fhir.hooks import ReadCheck, ReadEvent
from app.fhir.http import version_number
from app.fhir.interactions.history import CURSOR_PARAM, history_rows, parse_history_query
from app.fhir.interactions.history import _entry as history_entry
from app.fhir.interactions.read import gone
from app.fhir.interactions.search import search_in
from app.fhir.interactions.transaction.entries import Entry
from app.fhir.interactions.transaction.results import EntryResult, read_result
from app.fhir.outcome import Category, FhirError
from app.fhir.service import FhirService


async def get_in(svc: FhirService, ctx: RequestContext, conn: AsyncConnection, entry: Entry) -> EntryResult:
    target = entry.target
    res_type, res_id = target.res_type, target.res_id
    if res_type is not None and res_id is None and not target.history:
        return await search_entry(svc, ctx, conn, entry)
    store = svc.resource_type(res_type).store if res_type is not None else None
    if store is not None and res_id is not None and not target.history:  # the audit trail
        one = await store.read(ctx, res_id)
        return read_result(one.content, one.version, one.last_updated)
    if store is not None and res_id is not None and target.version is not None:
        kept = await store.vread(ctx, res_id, target.version)
        return read_result(kept.content, kept.version, kept.last_updated)
    interaction = _interaction(entry)
    if svc.hooks.before_read:
        await svc.hooks.run_before_read(ReadEvent(ctx, interaction, res_type, res_id))
    if target.history and target.version is None:
        body = await _history(svc, ctx, conn, res_type, res_id, dict(parse_qsl(target.query)))
        return read_result(body, None, None)
    assert res_type is not None
    assert res_id is not None
    if target.version is not None:
        version = target.version
        number = version_number(version)
        row = await svc.repo.version(conn, res_type, res_id, number) if number is not None else None
        if row is None:
            raise FhirError(Category.NOT_FOUND, f"{res_type}/{res_id} has no version '{version[:20]}'")
        if row.content is None:
            raise gone(res_type, res_id, row.version)
        if svc.hooks.after_read:
            await svc.hooks.run_after_read(
                ReadCheck(ctx, conn, "vread", res_type, res_id, row.res_pk, row.version)
            )
        return read_result(row.content, row.version, row.last_updated)
    current = await svc.repo.read_current(conn, res_type, res_id)
    if current is None:
        raise FhirError(Category.NOT_FOUND, f"{res_type}/{res_id} is not known")
    if current.deleted:
        raise gone(res_type, res_id, current.version)
    if svc.hooks.after_read:
        await svc.hooks.run_after_read(
            ReadCheck(ctx, conn, "read", res_type, res_id, current.pk, current.version)
        )
    return read_result(current.content, current.version, current.last_updated)


def _interaction(entry: Entry) -> str:
    target = entry.target
    if target.version is not None:
        return "vread"
    if target.history:
        return f"history-{'instance' if target.res_id else 'type' if target.res_type else 'system'}"
    return "read"


async def search_entry(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, entry: Entry
) -> EntryResult:
    """Type-level search (GET Type?params): a searchset Bundle as the entry's resource."""
    assert entry.target.res_type is not None
    body = await search_in(svc, ctx, conn, entry.target.res_type, entry.target.query)
    return read_result(body, None, None)


async def _history(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    res_type: str | None,
    res_id: str | None,
    params: dict[str, str],
) -> bytes:
    """The history interaction's Bundle, read on `conn` (history.history opens its own connection)."""
    query = parse_history_query(svc, params)
    level = f"history-{'instance' if res_id else 'type' if res_type else 'system'}"
    rows, total = await history_rows(svc, ctx, conn, res_type, res_id, query, level, params)
    path = "/".join(p for p in (res_type, res_id) if p)
    base = f"{ctx.base_url}/{path}/_history" if path else f"{ctx.base_url}/_history"
    keep = {"_count": str(query.count)}
    if query.since_text:
        keep["_since"] = query.since_text
    page = rows[: query.count]
    links = [("self", f"{base}?{urlencode(keep)}")]
    if len(rows) > query.count and page:
        links.append(("next", f"{base}?{urlencode({**keep, CURSOR_PARAM: str(page[-1].seq)})}"))
    return bundle_bytes("history", (history_entry(ctx.base_url, row) for row in page), links, total)
