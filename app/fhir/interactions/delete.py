"""delete (idempotent) and conditional delete (single match)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.interactions.common import check_if_match, match_one, store_version
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.outcome import Category, FhirError
from app.fhir.registry import ResourceType
from app.fhir.search.criteria import Criteria, parse_criteria
from app.fhir.service import FhirService, now_ms
from app.store.repository import StoredResource


@dataclass(frozen=True)
class DeleteResult:
    message: str
    version: int | None  # version written by the delete (or of the earlier delete); None if nothing existed


async def _delete_current(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    current: StoredResource | None,
    res_id: str,
    if_match: int | None,
) -> DeleteResult:
    check_if_match(f"{rtype.name}/{res_id}", current, if_match)
    if current is None:
        return DeleteResult(f"{rtype.name}/{res_id} does not exist; nothing to delete", None)
    if current.deleted:
        return DeleteResult(f"{rtype.name}/{res_id} was already deleted", current.version)
    stored = await store_version(svc, ctx, conn, rtype, current, None, now_ms(), "DELETE")
    return DeleteResult(f"Deleted {rtype.name}/{res_id} (version {stored.version})", stored.version)


async def delete_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    res_id: str,
    if_match: int | None = None,
) -> DeleteResult:
    """Delete inside the caller's unit of work."""
    if rtype.store is not None:  # kept outside the resource tables, append-only (the audit trail)
        raise FhirError(Category.FORBIDDEN, f"{rtype.name} resources cannot be deleted", "forbidden")
    current = await svc.repo.current(conn, rtype.name, res_id, for_update=True)
    return await _delete_current(svc, ctx, conn, rtype, current, res_id, if_match)


async def conditional_delete_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    criteria: Criteria,
    rtype: ResourceType,
    if_match: int | None = None,
) -> DeleteResult:
    match = await match_one(svc, ctx, conn, criteria, "delete")
    if match is None:
        return DeleteResult(f"No {rtype.name} matches '{criteria.canonical}'; nothing to delete", None)
    return await _delete_current(svc, ctx, conn, rtype, match, match.res_id, if_match)


async def delete(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    res_id: str,
    if_match: int | None = None,
    conn: AsyncConnection | None = None,
) -> DeleteResult:
    """With `conn`, inside that (the caller's) unit of work: a pack deriving data from a write."""
    rtype = svc.resource_type(res_type)
    if conn is not None:
        return await delete_in(svc, ctx, conn, rtype, res_id, if_match)
    return await in_unit_of_work(
        svc,
        lambda conn: delete_in(svc, ctx, conn, rtype, res_id, if_match),
        f"Delete of {res_type}/{res_id}",
        if_match=if_match is not None,
    )


async def conditional_delete(
    svc: FhirService, ctx: RequestContext, res_type: str, query: str, if_match: int | None = None
) -> DeleteResult:
    rtype = svc.resource_type(res_type)
    criteria = parse_criteria(rtype, query, svc.registry, svc.base_url)
    return await in_unit_of_work(
        svc,
        lambda conn: conditional_delete_in(svc, ctx, conn, criteria, rtype, if_match),
        f"Conditional delete of {res_type}",
        if_match=if_match is not None,
    )
