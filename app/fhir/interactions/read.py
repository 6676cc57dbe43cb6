"""read and vread: stored bytes straight from the store, never re-parsed."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.hooks import ReadCheck, ReadEvent
from app.fhir.http import version_number
from app.fhir.outcome import Category, FhirError
from app.fhir.service import FhirService
from app.store.repository import CurrentVersion, HistoryRow


def gone(res_type: str, res_id: str, version: int) -> FhirError:
    return FhirError(
        Category.GONE,
        f"{res_type}/{res_id} was deleted",
        headers={"ETag": f'W/"{version}"'},
    )


async def read(
    svc: FhirService, ctx: RequestContext, res_type: str, res_id: str, conn: AsyncConnection | None = None
) -> CurrentVersion:
    """The current version; `conn` lets a transaction's GET entries see the transaction's own writes."""
    store = svc.resource_type(res_type).store
    if store is not None:  # a type kept outside the resource tables (the audit trail)
        return await store.read(ctx, res_id, conn)
    if svc.hooks.before_read:
        await svc.hooks.run_before_read(ReadEvent(ctx, "read", res_type, res_id))
    async with svc.repo.reading(conn) as reader:
        return await _read_on(svc, ctx, reader, res_type, res_id)


async def _read_on(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, res_type: str, res_id: str
) -> CurrentVersion:
    judged_read = svc.hooks.read_judge(ctx, res_type, res_id) if svc.hooks.read_judge else None
    judged: object | None = None
    if judged_read is None:
        stored = await svc.repo.read_current(conn, res_type, res_id)
    else:  # the row and the after_read hooks' decision about it in one statement
        found = await svc.repo.read_current_judged(conn, res_type, res_id, judged_read)
        stored, judged = found if found is not None else (None, None)
    if stored is None:
        raise FhirError(Category.NOT_FOUND, f"{res_type}/{res_id} is not known")
    if stored.deleted:
        raise gone(res_type, res_id, stored.version)
    if svc.hooks.after_read:
        await svc.hooks.run_after_read(
            ReadCheck(ctx, conn, "read", res_type, res_id, stored.pk, stored.version, judged)
        )
    return stored


async def vread(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    res_id: str,
    version_id: str,
    conn: AsyncConnection | None = None,
) -> HistoryRow:
    store = svc.resource_type(res_type).store
    if store is not None:  # a type kept outside the resource tables (the audit trail)
        return await store.vread(ctx, res_id, version_id, conn)
    version = version_number(version_id)
    if version is None:
        raise FhirError(Category.NOT_FOUND, f"{res_type}/{res_id} has no version '{version_id[:20]}'")
    if svc.hooks.before_read:
        await svc.hooks.run_before_read(ReadEvent(ctx, "vread", res_type, res_id))
    async with svc.repo.reading(conn) as reader:
        return await _vread_on(svc, ctx, reader, res_type, res_id, version)


async def _vread_on(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, res_type: str, res_id: str, version: int
) -> HistoryRow:
    row = await svc.repo.version(conn, res_type, res_id, version)
    if row is None:
        raise FhirError(Category.NOT_FOUND, f"{res_type}/{res_id} has no version {version}")
    if row.content is None:
        raise gone(res_type, res_id, row.version)
    if svc.hooks.after_read:
        await svc.hooks.run_after_read(
            ReadCheck(ctx, conn, "vread", res_type, res_id, row.res_pk, row.version)
        )
    return row


async def read_reference(
    svc: FhirService, ctx: RequestContext, reference: str | None
) -> dict[str, Any] | None:
    """The current content of a literal relative reference ("Type/id"), parsed, for operations that work
    on it; None for anything else (absolute, contained or identifier-only references)."""
    parts = reference.split("/") if reference else []
    if len(parts) != 2:
        return None
    stored = await read(svc, ctx, parts[0], parts[1])
    return orjson.loads(stored.content) if stored.content is not None else None
