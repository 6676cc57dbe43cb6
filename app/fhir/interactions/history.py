"""Instance, type and system _history with _count, _since, _at and stable keyset paging."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.bundle import bundle_bytes, entry_bytes
from app.fhir.context import RequestContext
from app.fhir.hooks import ReadCheck, ReadEvent, Returned, SearchEvent
from app.fhir.outcome import Category, FhirError
from app.fhir.search.normalize import date_range
from app.fhir.service import FhirService, fhir_instant
from app.store.repository import HistoryRow
from app.store.visibility import Unrestricted

# Instance history: the read check has already decided on the resource, for all its versions.
RESOURCE_CHECKED = Unrestricted("instance history: the read check decided on the resource")

CURSOR_PARAM = "_cursor"
MAX_SEQ_DIGITS = 18  # history cursors are 64-bit row numbers; longer ones name no row
# What history understands; _format and _pretty belong to the HTTP layer. Anything else is ignored, or
# with Prefer: handling=strict refused.
HISTORY_PARAMS = frozenset({"_count", "_since", "_at", CURSOR_PARAM, "_format", "_pretty"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Period = tuple[datetime, datetime]  # inclusive


@dataclass(frozen=True)
class HistoryQuery:
    count: int
    since: datetime | None
    cursor: int | None
    since_text: str | None
    at: Period | None = None
    at_text: str | None = None


def parse_at(text: str) -> Period:
    """_at: the period a date, dateTime or instant stands for at its precision (2020 is the whole year)."""
    bounds = date_range(text)
    if bounds is None:
        raise FhirError(Category.INVALID, f"_at must be a FHIR date or dateTime, got '{text[:40]}'", "value")
    low, high = bounds
    return _EPOCH + timedelta(microseconds=low), _EPOCH + timedelta(microseconds=high)


def check_history_params(params: dict[str, str], strict: bool) -> None:
    unknown = sorted(name for name in params if name not in HISTORY_PARAMS)
    if strict and unknown:
        raise FhirError(
            Category.INVALID, f"History does not support {', '.join(unknown)[:120]}", "not-supported"
        )


def parse_instant(name: str, text: str) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FhirError(
            Category.INVALID, f"{name} must be a FHIR instant, got '{text[:40]}'", "value"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def parse_count(text: str | None, default: int, maximum: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()):
        raise FhirError(
            Category.INVALID, f"_count must be a non-negative integer, got '{text[:20]}'", "value"
        )
    return min(int(text), maximum)


def parse_history_query(svc: FhirService, params: dict[str, str], strict: bool = False) -> HistoryQuery:
    check_history_params(params, strict)
    since_text = params.get("_since")
    at_text = params.get("_at")
    cursor = params.get(CURSOR_PARAM)
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= MAX_SEQ_DIGITS):
        raise FhirError(Category.INVALID, f"{CURSOR_PARAM} is not a valid page cursor", "value")
    return HistoryQuery(
        count=parse_count(params.get("_count"), svc.default_page_size, svc.max_page_size),
        since=parse_instant("_since", since_text) if since_text else None,
        cursor=int(cursor) if cursor else None,
        since_text=since_text,
        at=parse_at(at_text) if at_text else None,
        at_text=at_text,
    )


async def history_rows(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    res_type: str | None,
    res_id: str | None,
    query: HistoryQuery,
    level: str,
    params: dict[str, str],
) -> tuple[list[HistoryRow], int]:
    """One page (plus one row) of history on `conn`, with the access hooks: an instance's history is
    checked like a read of the resource; type and system history only contain what the caller may see."""
    visible = svc.hooks.visible(ctx)
    if res_type and res_id:
        current = await svc.repo.current(conn, res_type, res_id)
        if current is None:
            raise FhirError(Category.NOT_FOUND, f"{res_type}/{res_id} is not known")
        if svc.hooks.after_read:
            await svc.hooks.run_after_read(
                ReadCheck(ctx, conn, level, res_type, res_id, current.pk, current.version)
            )
        # The read check decided on the resource for every version of it (a block on the current
        # version hides them all); the row filter would decide the same again.
        visible = RESOURCE_CHECKED
    rows, total = await svc.repo.history(
        conn, res_type, res_id, query.since, query.cursor, query.count + 1, visible, query.at
    )
    if svc.hooks.after_search and not res_id:
        returned = [Returned(r.res_type, r.res_id, r.version, r.res_pk) for r in rows[: query.count]]
        types = (res_type,) if res_type else ()
        event = SearchEvent(ctx, conn, level, types, urlencode(params), None, returned)
        await svc.hooks.run_after_search(event)
    return rows, total


def history_entry(base_url: str, row: HistoryRow) -> bytes:
    url = f"{row.res_type}/{row.res_id}"
    if row.method == "DELETE":
        request = {"method": "DELETE", "url": url}
        status = "204 No Content"
    elif row.version == 1 and row.method == "POST":
        request = {"method": "POST", "url": row.res_type}
        status = "201 Created"
    else:
        request = {"method": row.method, "url": url}
        status = "201 Created" if row.version == 1 else "200 OK"
    fields = {
        "fullUrl": f"{base_url}/{url}",
        "request": request,
        "response": {
            "status": status,
            "etag": f'W/"{row.version}"',
            "lastModified": fhir_instant(row.last_updated),
        },
    }
    return entry_bytes(fields, row.content)


async def history(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str | None,
    res_id: str | None,
    params: dict[str, str],
    conn: AsyncConnection | None = None,
    strict: bool = False,
) -> bytes:
    """The history Bundle; `conn` lets a transaction's GET entries see the transaction's own writes,
    `strict` (Prefer: handling=strict) refuses parameters history does not understand."""
    store = svc.resource_type(res_type).store if res_type is not None else None
    if store is not None:  # a type kept outside the resource tables (the audit trail)
        check_history_params(params, strict)
        return await store.history(ctx, res_id, params, conn)
    query = parse_history_query(svc, params, strict)
    level = "history-instance" if res_id else "history-type" if res_type else "history-system"
    if svc.hooks.before_read:
        await svc.hooks.run_before_read(ReadEvent(ctx, level, res_type, res_id))
    async with svc.repo.reading(conn) as reader:
        rows, total = await history_rows(svc, ctx, reader, res_type, res_id, query, level, params)

    path = "/".join(p for p in (res_type, res_id) if p)
    base = f"{ctx.base_url}/{path}/_history" if path else f"{ctx.base_url}/_history"
    keep = {"_count": str(query.count)}
    if query.since_text:
        keep["_since"] = query.since_text
    if query.at_text:
        keep["_at"] = query.at_text
    self_params = dict(keep)
    if query.cursor is not None:
        self_params[CURSOR_PARAM] = str(query.cursor)
    links = [("self", f"{base}?{urlencode(self_params)}"), ("first", f"{base}?{urlencode(keep)}")]
    page = rows[: query.count]
    if len(rows) > query.count and page:
        links.append(("next", f"{base}?{urlencode({**keep, CURSOR_PARAM: str(page[-1].seq)})}"))
    return bundle_bytes("history", (history_entry(ctx.base_url, row) for row in page), links, total)
