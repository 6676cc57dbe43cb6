"""create, plain and conditional (If-None-Exist), race-safe through a unique key in the database."""

from __future__ import annotations

import uuid
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.interactions.common import (
    MAX_ATTEMPTS,
    DuplicateKey,
    claim,
    clear_stale_claim,
    match_one,
    retry_exhausted,
    store_new,
)
from app.fhir.search.criteria import parse_criteria, require_match
from app.fhir.service import FhirService, WriteResult, now_ms
from app.fhir.validate import validate_resource
from app.store.repository import IdIn


def new_id() -> str:
    return str(uuid.uuid4())


async def create(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    body: Any,
    if_none_exist: str | None = None,
) -> WriteResult:
    rtype = svc.resource_type(res_type)
    resource = validate_resource(svc.registry, body, res_type)
    # R4 3.1.0.7: an id in the body of a create is ignored; the server assigns one.
    if not if_none_exist:
        async with svc.repo.writer() as conn:
            stored = await store_new(svc, ctx, conn, rtype, resource, new_id(), now_ms(), "POST")
        return WriteResult(201, stored, created=True)

    criteria = parse_criteria(rtype, if_none_exist)
    if not any(isinstance(c, IdIn) for c in criteria.clauses):
        require_match(criteria, rtype, None, resource)
    for _attempt in range(MAX_ATTEMPTS):
        try:
            async with svc.repo.writer() as conn:
                existing = await match_one(svc, conn, criteria, "create")
                if existing is not None:
                    return WriteResult(200, existing)
                at = now_ms()
                stored = await store_new(svc, ctx, conn, rtype, resource, new_id(), at, "POST")
                await claim(svc, conn, criteria, stored, at)
            return WriteResult(201, stored, created=True)
        except DuplicateKey:
            # Another create with the same criteria committed first (its resource is found on the next
            # attempt), or an old claim outlived the match it recorded.
            await clear_stale_claim(svc, criteria)
    raise retry_exhausted("Conditional create")
