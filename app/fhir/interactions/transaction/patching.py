"""PATCH entries: a Binary carrying a JSON Patch (or FHIRPath Patch) or a Parameters resource (FHIRPath
Patch), applied by the PATCH interaction's patch_in."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.interactions.common import match_one
from app.fhir.interactions.patch import PatchKind, patch_in, patch_kind
from app.fhir.interactions.transaction.entries import Entry
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.outcome import Category, FhirError
from app.fhir.search.criteria import parse_criteria
from app.fhir.service import FhirService, WriteResult
from app.fhir.validate import parse_json


def patch_document(resource: dict[str, Any]) -> tuple[Any, PatchKind]:
    """(parsed patch document, kind) of a PATCH entry's resource."""
    res_type = resource.get("resourceType")
    if res_type == "Parameters":
        return resource, "fhirpath-patch"
    if res_type != "Binary":
        raise FhirError(
            Category.INVALID,
            "The resource of a PATCH entry must be a Binary (JSON Patch) or Parameters (FHIRPath Patch)",
            "invalid",
            ("resourceType",),
        )
    kind = patch_kind(resource.get("contentType"))
    data = resource.get("data")
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else b""
    except (binascii.Error, ValueError):
        raise FhirError(
            Category.INVALID, "Binary.data is not valid base64", "value", ("Binary.data",)
        ) from None
    return parse_json(raw), kind


async def patch_entry_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    entry: Entry,
    res_id: str | None,
    resource: dict[str, Any],
) -> WriteResult:
    """Patch inside the caller's unit of work; a conditional PATCH (no res_id) needs a single match."""
    assert entry.rtype is not None
    if res_id is None:
        criteria = entry.criteria or parse_criteria(
            entry.rtype, entry.target.query, svc.registry, svc.base_url
        )
        match = await match_one(svc, ctx, conn, criteria, "patch")
        if match is None:
            raise FhirError(Category.NOT_FOUND, f"No {entry.rtype.name} matches '{criteria.canonical}'")
        res_id = match.res_id
    document, kind = patch_document(resource)
    return await patch_in(svc, ctx, conn, entry.rtype, res_id, document, kind, entry.if_match)


async def patch_in_batch(svc: FhirService, ctx: RequestContext, entry: Entry) -> WriteResult:
    """One PATCH entry in its own unit of work, retried like the PATCH interaction when it loses a race."""
    assert entry.resource is not None
    resource = entry.resource
    return await in_unit_of_work(
        svc,
        lambda conn: patch_entry_in(svc, ctx, conn, entry, entry.target.res_id, resource),
        f"Patch of {entry.url[:120]}",
        if_match=entry.if_match is not None,
    )
