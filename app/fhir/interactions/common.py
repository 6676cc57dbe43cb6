"""Pieces every write interaction shares: store a new resource or a new version with its index rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.hooks import MatchCheck, WriteEvent
from app.fhir.http import ANY_VERSION, NO_VERSION
from app.fhir.interactions.integrity import require_references
from app.fhir.outcome import Category, FhirError
from app.fhir.registry import ResourceType
from app.fhir.search.criteria import Criteria
from app.fhir.search.extract import index_rows
from app.fhir.search.valuesets import resolve_value_sets
from app.fhir.service import FhirService, WriteResult, canonical_bytes
from app.store.query import IdIn
from app.store.repository import DuplicateKey, RowLock, StoredResource
from app.store.visibility import EVERY_ROW

# How often a unit of work that lost a race is tried again before the client gets 409.
MAX_ATTEMPTS = 5


def check_if_match(what: str, current: StoredResource | None, if_match: int | None) -> None:
    """412 unless If-Match (a version, ANY_VERSION or NO_VERSION) holds for `what`'s current version."""
    if if_match is None:
        return
    if current is None or (if_match == ANY_VERSION and current.deleted):
        raise FhirError(Category.PRECONDITION, f"If-Match given but {what} does not exist")
    if if_match != ANY_VERSION and current.version != if_match:
        asked = "an entity tag that names no version" if if_match == NO_VERSION else f"version {if_match}"
        raise FhirError(
            Category.PRECONDITION,
            f"Version conflict: {what} is at version {current.version}, If-Match asks for {asked}",
            "conflict",
        )


def retry_exhausted(what: str) -> FhirError:
    return FhirError(
        Category.CONFLICT, f"{what} kept colliding with concurrent writes; try again", "transient"
    )


async def store_new(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    resource: dict[str, Any],
    res_id: str,
    at: datetime,
    method: str,
) -> StoredResource:
    event = WriteEvent(ctx, conn, "create", rtype.name, res_id, resource, 1)
    await svc.hooks.run_before_write(event)
    await require_references(svc, conn, resource, res_id)
    content = canonical_bytes(resource, res_id, 1, at)
    index = index_rows(rtype, resource, svc.base_url).tables()
    stored = await svc.repo.insert(conn, rtype.name, res_id, content, at, method, index)
    if svc.hooks.after_write:
        await svc.hooks.run_after_write(replace(event, pk=stored.pk))
    return stored


async def store_version(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    current: StoredResource,
    resource: dict[str, Any] | None,
    at: datetime,
    method: str,
) -> StoredResource:
    """Next version of an existing row (resource None deletes it)."""
    version = current.version + 1
    interaction = "delete" if resource is None else "update"
    event = WriteEvent(
        ctx, conn, interaction, rtype.name, current.res_id, resource, version, current.pk, current.content
    )
    await svc.hooks.run_before_write(event)
    if resource is not None:
        await require_references(svc, conn, resource, current.res_id)
    content = None if resource is None else canonical_bytes(resource, current.res_id, version, at)
    index = {} if resource is None else index_rows(rtype, resource, svc.base_url).tables()
    stored = await svc.repo.replace(conn, current, content, at, method, index)
    if resource is None:
        await svc.repo.release_conditionals_of(conn, stored.pk)
    if svc.hooks.after_write:
        await svc.hooks.run_after_write(replace(event, pk=stored.pk))
    return stored


def hidden_match(interaction: str) -> FhirError:
    """The criteria matched a resource the caller may not read: said without naming or showing it."""
    return FhirError(
        Category.FORBIDDEN,
        f"Conditional {interaction}: the criteria match a resource you have no access to",
        "forbidden",
    )


async def match_one(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, criteria: Criteria, interaction: str
) -> StoredResource | None:
    """The single live resource matching conditional criteria, None for no match, 412 for several.

    Matching counts every resource, visible to the caller or not: criteria name one identity, and
    creating a second resource under it, or acting on the wrong one, would corrupt the record. What the
    caller learns is the access policy's (hooks.may_know, which also audits): a match it may not read is
    refused with 403 here, without its id or content, and chains and _has in the criteria look only into
    what it may see. Conditional create, which may be told the id, uses `match_for_create`."""
    stored = await _single_match(svc, ctx, conn, criteria, interaction)
    if stored is not None and not await _may_know(svc, ctx, conn, stored, interaction):
        raise hidden_match(interaction)
    return stored


async def match_for_create(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, criteria: Criteria
) -> WriteResult | None:
    """If-None-Exist: the match (200), or for one the caller may not read, its location only."""
    stored = await _single_match(svc, ctx, conn, criteria, "create")
    if stored is None:
        return None
    hidden = not await _may_know(svc, ctx, conn, stored, "create")
    return WriteResult(200, stored, hidden=hidden)


async def _single_match(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, criteria: Criteria, interaction: str
) -> StoredResource | None:
    clauses = await resolve_value_sets(svc.repo, conn, criteria.clauses)
    scope = svc.hooks.visible(ctx)
    pks = await svc.repo.find(conn, criteria.res_type, clauses, 2, EVERY_ROW, inner=scope)
    if len(pks) > 1:
        raise FhirError(
            Category.PRECONDITION,
            f"Conditional {interaction}: more than one {criteria.res_type} matches '{criteria.canonical}'",
            "multiple-matches",
        )
    if not pks:
        return None
    # A delete or patch writes what it matched: locked for update from the start. A create or update
    # that finds the match unchanged only relies on it (a share lock): messages from one sender, each
    # matching the sender's Organization, no longer wait for each other's commit. An update that does
    # change it takes the row's lock as it writes; two such at once are a deadlock the database breaks
    # and in_unit_of_work runs again.
    lock: RowLock = "update" if interaction in ("delete", "patch") else "share"
    (stored,) = await svc.repo.current_by_pks(conn, pks, EVERY_ROW, lock=lock)
    return stored


async def _may_know(
    svc: FhirService, ctx: RequestContext, conn: AsyncConnection, stored: StoredResource, interaction: str
) -> bool:
    check = MatchCheck(ctx, conn, interaction, stored.res_type, stored.res_id, stored.pk, stored.version)
    return await svc.hooks.may_know(check)


async def clear_stale_claim(svc: FhirService, criteria: Criteria) -> None:
    """After losing a conditional-create race: drop the claim if its resource no longer matches."""
    async with svc.repo.writer() as conn:
        clauses = await resolve_value_sets(svc.repo, conn, criteria.clauses)
        if not await svc.repo.find(conn, criteria.res_type, clauses, 1, EVERY_ROW):
            await svc.repo.release_conditional(conn, criteria.hash)


async def claim(
    svc: FhirService, conn: AsyncConnection, criteria: Criteria, stored: StoredResource, at: datetime
) -> None:
    await svc.repo.claim_conditional(
        conn, criteria.hash, criteria.res_type, criteria.canonical, stored.pk, at
    )


__all__ = ["DuplicateKey", "claim", "clear_stale_claim", "match_one", "store_new", "store_version"]


async def require_stored_match(
    svc: FhirService, conn: AsyncConnection, criteria: Criteria, stored: StoredResource
) -> None:
    """A resource created under conditional criteria must match them (checked in the same transaction,
    where its index rows are already visible); otherwise the next identical request would not find it."""
    clauses = (*await resolve_value_sets(svc.repo, conn, criteria.clauses), IdIn((stored.res_id,)))
    if not await svc.repo.find(conn, criteria.res_type, clauses, 1, EVERY_ROW):
        raise FhirError(
            Category.INVALID,
            f"The resource does not match its own conditional criteria '{criteria.canonical}'",
            "invalid",
        )
