"""create, plain and conditional (If-None-Exist), race-safe through a unique key in the database."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.hooks import WriteEvent
from app.fhir.interactions.common import (
    claim,
    match_for_create,
    require_stored_match,
    store_new,
)
from app.fhir.interactions.integrity import require_references
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.registry import Registry, ResourceType
from app.fhir.search.criteria import Criteria, has_id_clause, parse_criteria, require_match, tokens_only
from app.fhir.search.extract import index_rows
from app.fhir.service import FhirService, WriteResult, canonical_bytes, now_ms
from app.fhir.validate import validate_resource


def new_id() -> str:
    return str(uuid.uuid4())


async def create_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    resource: dict[str, Any],
    criteria: Criteria | None = None,
    res_id: str | None = None,
) -> WriteResult:
    """Create inside the caller's unit of work; with criteria, return the single match instead."""
    if criteria is not None:
        existing = await match_for_create(svc, ctx, conn, criteria)
        if existing is not None:
            return existing
    at = now_ms()
    stored = await store_new(svc, ctx, conn, rtype, resource, res_id or new_id(), at, "POST")
    if criteria is not None:
        # The server assigns the id, so _id criteria cannot match it; token criteria were judged on the
        # resource itself before (create_criteria).
        if not has_id_clause(criteria) and not tokens_only(criteria):
            await require_stored_match(svc, conn, criteria, stored)
        await claim(svc, conn, criteria, stored, at)
    return WriteResult(201, stored, created=True)


def create_criteria(
    rtype: ResourceType,
    resource: dict[str, Any],
    if_none_exist: str | None,
    registry: Registry,
    base_url: str,
) -> Criteria | None:
    """Parsed If-None-Exist criteria; a resource that visibly cannot match them is rejected up front."""
    if not if_none_exist:
        return None
    criteria = parse_criteria(rtype, if_none_exist, registry, base_url)
    if not has_id_clause(criteria):
        require_match(criteria, rtype, None, resource)
    return criteria


async def create(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    body: Any,
    if_none_exist: str | None = None,
    conn: AsyncConnection | None = None,
) -> WriteResult:
    """With `conn`, inside that (the caller's) unit of work: a pack deriving data from a write."""
    rtype = svc.resource_type(res_type)
    resource = validate_resource(svc.registry, body, res_type)
    # R4 3.1.0.7: an id in the body of a create is ignored; the server assigns one.
    criteria = create_criteria(rtype, resource, if_none_exist, svc.registry, svc.base_url)
    if conn is not None:
        return await create_in(svc, ctx, conn, rtype, resource, criteria)
    # A lost race: another create with the same criteria committed first (its resource is found on the
    # next attempt), or an old claim outlived the match it recorded.
    return await in_unit_of_work(
        svc,
        lambda conn: create_in(svc, ctx, conn, rtype, resource, criteria),
        f"Create of {res_type}",
        claims=[criteria] if criteria is not None else [],
    )


async def create_many_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    items: list[tuple[ResourceType, dict[str, Any], str]],
    criteria: list[Criteria | None] | None = None,
) -> list[WriteResult]:
    """Creates of many resources at once, for transactions: the same rows, hooks, index entries and
    conditional-create keys as create_in, written with a few bulk statements instead of several per
    resource. With criteria, the caller has already found that nothing matches (If-None-Exist); the
    unique criteria keys still turn a concurrent identical create into DuplicateKey."""
    at = now_ms()
    events = [
        WriteEvent(ctx, conn, "create", rtype.name, res_id, resource, 1) for rtype, resource, res_id in items
    ]
    for event in events:
        await svc.hooks.run_before_write(event)
    for _rtype, resource, res_id in items:
        await require_references(svc, conn, resource, res_id)
    stored = await svc.repo.insert_many(
        conn,
        [(rtype.name, res_id, canonical_bytes(resource, res_id, 1, at)) for rtype, resource, res_id in items],
        at,
        "POST",
    )
    await svc.repo.insert_index_many(
        conn,
        [
            (row, index_rows(rtype, resource, svc.base_url).tables())
            for row, (rtype, resource, _) in zip(stored, items, strict=True)
        ],
    )
    claims = [
        (c.hash, c.res_type, c.canonical, row.pk)
        for row, c in zip(stored, criteria or [], strict=False)
        if c is not None
    ]
    await svc.repo.claim_conditional_many(conn, claims, at)
    for row, c in zip(stored, criteria or [], strict=False):
        if c is not None and not has_id_clause(c) and not tokens_only(c):
            await require_stored_match(svc, conn, c, row)  # token criteria were checked before writing
    for event, row in zip(events, stored, strict=True):
        await svc.hooks.run_after_write(replace(event, pk=row.pk))
    return [WriteResult(201, row, created=True) for row in stored]
