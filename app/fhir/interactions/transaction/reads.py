"""GET entries (read, vread, history, search) through the same interaction cores as the REST routes, on
a given connection, so that a transaction's reads see its own writes; a batch passes a reader connection."""

from __future__ import annotations

from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.interactions.history import history
from app.fhir.interactions.read import read, vread
from app.fhir.interactions.search import search_in
from app.fhir.interactions.transaction.entries import Entry
from app.fhir.interactions.transaction.results import EntryResult, read_result
from app.fhir.service import FhirService


async def get_in(svc: FhirService, ctx: RequestContext, conn: AsyncConnection, entry: Entry) -> EntryResult:
    target = entry.target
    res_type, res_id = target.res_type, target.res_id
    if target.history and target.version is None:
        body = await history(svc, ctx, res_type, res_id, dict(parse_qsl(target.query)), conn)
        return read_result(body, None, None)
    assert res_type is not None  # a GET entry without a type is system history (above)
    if res_id is None:
        body = await search_in(svc, ctx, conn, res_type, target.query)
        return read_result(body, None, None)
    if target.version is not None:
        row = await vread(svc, ctx, res_type, res_id, target.version, conn)
        return read_result(row.content, row.version, row.last_updated)
    current = await read(svc, ctx, res_type, res_id, conn)
    return read_result(current.content, current.version, current.last_updated)
