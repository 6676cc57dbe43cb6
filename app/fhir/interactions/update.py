"""update (PUT), update-as-create with a client id, and conditional update."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.hooks import WriteEvent
from app.fhir.interactions.common import (
    check_if_match,
    claim,
    match_one,
    require_stored_match,
    store_new,
    store_version,
)
from app.fhir.interactions.create import new_id
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.outcome import Category, FhirError
from app.fhir.registry import ResourceType
from app.fhir.search.criteria import Criteria, parse_criteria, require_match, tokens_only
from app.fhir.service import FhirService, WriteResult, now_ms, same_content
from app.fhir.validate import validate_resource
from app.store.repository import StoredResource


async def _apply(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    res_id: str,
    resource: dict[str, Any],
    current: StoredResource | None,
    if_match: int | None,
) -> WriteResult:
    check_if_match(f"{rtype.name}/{res_id}", current, if_match)
    if current is None:
        if not svc.allow_update_create:
            raise FhirError(Category.NOT_FOUND, f"{rtype.name}/{res_id} is not known; use POST to create")
        stored = await store_new(svc, ctx, conn, rtype, resource, res_id, now_ms(), "PUT")
        return WriteResult(201, stored, created=True)
    if not current.deleted and current.content is not None and same_content(current.content, resource):
        # No-op: no new version, like HAPI. The write hooks still decide whether it was allowed at all.
        if svc.hooks.before_write:
            event = WriteEvent(
                ctx,
                conn,
                "update",
                rtype.name,
                res_id,
                resource,
                current.version,
                current.pk,
                current.content,
            )
            await svc.hooks.run_before_write(event)
        return WriteResult(200, current)
    stored = await store_version(svc, ctx, conn, rtype, current, resource, now_ms(), "PUT")
    return WriteResult(201 if current.deleted else 200, stored, created=current.deleted)


async def update_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    res_id: str,
    resource: dict[str, Any],
    if_match: int | None = None,
) -> WriteResult:
    """Update (or update-as-create) inside the caller's unit of work; the row is locked first."""
    current = await svc.repo.current(conn, rtype.name, res_id, for_update=True)
    return await _apply(svc, ctx, conn, rtype, res_id, resource, current, if_match)


async def update(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    res_id: str,
    body: Any,
    if_match: int | None = None,
    conn: AsyncConnection | None = None,
) -> WriteResult:
    """With `conn`, inside that (the caller's) unit of work: a pack deriving data from a write."""
    rtype = svc.resource_type(res_type)
    resource = validate_resource(svc.registry, body, res_type)
    body_id = resource.get("id")
    if body_id is None:
        raise FhirError(
            Category.INVALID, "The resource in an update must carry its id", "required", (f"{res_type}.id",)
        )
    if body_id != res_id:
        raise FhirError(
            Category.INVALID,
            f"id '{body_id}' in the body does not match '{res_id}' in the URL",
            "invalid",
            (f"{res_type}.id",),
        )
    if conn is not None:
        return await update_in(svc, ctx, conn, rtype, res_id, resource, if_match)
    return await in_unit_of_work(
        svc,
        lambda unit: update_in(svc, ctx, unit, rtype, res_id, resource, if_match),
        f"Update of {res_type}/{res_id}",
        if_match=if_match is not None,
    )


@dataclass(frozen=True)
class KnownMatch:
    """The match of a conditional update already made in this unit of work, and known to hold still (a
    transaction matches its entries before it writes them): `stored` None for no match, `new_id` when the
    body's id is one the server has just made up for the resource to create."""

    stored: StoredResource | None
    new_id: bool


async def conditional_update_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    criteria: Criteria,
    resource: dict[str, Any],
    if_match: int | None = None,
    known: KnownMatch | None = None,
) -> WriteResult:
    """Conditional update inside the caller's unit of work."""
    res_type = rtype.name
    body_id = resource.get("id")
    match = known.stored if known is not None else await match_one(svc, ctx, conn, criteria, "update")
    if match is not None:
        if body_id is not None and body_id != match.res_id:
            raise FhirError(
                Category.INVALID,
                f"The criteria match {res_type}/{match.res_id} but the body has id '{body_id}'",
                "invalid",
                (f"{res_type}.id",),
            )
        return await _apply(svc, ctx, conn, rtype, match.res_id, resource, match, if_match)
    # No match: create, at the client's id if it gave one (R4 3.1.0.4.3).
    res_id = body_id or new_id()
    require_match(criteria, rtype, res_id if body_id else None, resource)
    # A new id cannot be taken yet; only a client's id needs looking up.
    made_up = not body_id or (known is not None and known.new_id)
    current = None if made_up else await svc.repo.current(conn, res_type, res_id, for_update=True)
    if current is not None and not current.deleted:
        raise FhirError(
            Category.CONFLICT,
            f"{res_type}/{res_id} exists but does not match the criteria '{criteria.canonical}'",
        )
    result = await _apply(svc, ctx, conn, rtype, res_id, resource, current, if_match)
    if not tokens_only(criteria):  # token criteria were judged on the resource itself (require_match)
        await require_stored_match(svc, conn, criteria, result.stored)
    await claim(svc, conn, criteria, result.stored, result.stored.last_updated)
    return result


async def conditional_update(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    query: str,
    body: Any,
    if_match: int | None = None,
) -> WriteResult:
    rtype = svc.resource_type(res_type)
    resource = validate_resource(svc.registry, body, res_type)
    criteria = parse_criteria(rtype, query, svc.registry, svc.base_url)
    return await in_unit_of_work(
        svc,
        lambda conn: conditional_update_in(svc, ctx, conn, rtype, criteria, resource, if_match),
        f"Conditional update of {res_type}",
        if_match=if_match is not None,
        claims=[criteria],
    )
