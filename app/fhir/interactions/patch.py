"""patch (PATCH): a JSON Patch or FHIRPath Patch applied to the current version and stored like an update.

The patch is applied inside the unit of work, to the row locked there, so a concurrent writer can never be
overwritten with a patch computed from an older version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.hooks import ReadEvent
from app.fhir.http import FHIR_JSON, JSON_PATCH, PLAIN_JSON
from app.fhir.interactions.common import check_if_match, store_version
from app.fhir.interactions.read import gone
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.outcome import Category, FhirError
from app.fhir.patch.fhirpath_patch import apply_fhirpath_patch, parse_fhirpath_patch
from app.fhir.patch.json_patch import apply_json_patch, parse_json_patch
from app.fhir.registry import ResourceType
from app.fhir.service import FhirService, WriteResult, now_ms, same_content
from app.fhir.validate import parse_json, validate_resource

PatchKind = Literal["json-patch", "fhirpath-patch"]
# A compiled patch: (current resource, its fhir.resources model) -> patched JSON.
Patcher = Callable[[dict[str, Any], Any], Any]

_KINDS: dict[str, PatchKind] = {
    JSON_PATCH: "json-patch",
    FHIR_JSON: "fhirpath-patch",
    PLAIN_JSON: "fhirpath-patch",
    "application/json+fhir": "fhirpath-patch",
}


def patch_kind(content_type: str | None) -> PatchKind:
    """The patch format named by a Content-Type (or a Binary.contentType in a Bundle); 415 otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    kind = _KINDS.get(media)
    if kind is None:
        shown = f"'{media[:60]}'" if media else "missing"
        raise FhirError(
            Category.UNSUPPORTED_MEDIA,
            f"Content-Type {shown} is not a supported patch format; send application/json-patch+json "
            "(JSON Patch) or application/fhir+json with a Parameters resource (FHIRPath Patch)",
            "not-supported",
        )
    return kind


def compile_patch(document: Any, kind: PatchKind, res_type: str) -> Patcher:
    """Check the patch document once (400 when malformed, 422 for an unsupported FHIRPath)."""
    if kind == "json-patch":
        json_ops = parse_json_patch(document)
        return lambda resource, _model: apply_json_patch(resource, json_ops)
    fhirpath_ops = parse_fhirpath_patch(document, res_type)
    return lambda resource, model: apply_fhirpath_patch(resource, fhirpath_ops, model)


def _checked(svc: FhirService, rtype: ResourceType, res_id: str, patched: Any) -> dict[str, Any]:
    """The patched resource must still be this resource, and as valid as a PUT body."""
    if not isinstance(patched, dict) or patched.get("resourceType") != rtype.name:
        raise FhirError(
            Category.UNPROCESSABLE,
            "A patch must not change the resourceType",
            "processing",
            ("resourceType",),
        )
    if patched.get("id") != res_id:
        raise FhirError(
            Category.UNPROCESSABLE,
            "A patch must not change or remove the id",
            "processing",
            (f"{rtype.name}.id",),
        )
    try:
        return validate_resource(svc.registry, patched, rtype.name)
    except FhirError as error:
        if error.category is not Category.INVALID:
            raise
        # The request was well-formed; what it would produce is not: 422, with the validator's issues.
        message = f"The patched resource is not valid: {error.message}"
        raise dataclasses.replace(error, category=Category.UNPROCESSABLE, message=message) from None


async def _patch_current(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    res_id: str,
    patcher: Patcher,
    if_match: int | None,
) -> WriteResult:
    if svc.hooks.before_read:
        # A patch reveals the current content (the response, a JSON Patch test op): it needs read access too.
        await svc.hooks.run_before_read(ReadEvent(ctx, "read", rtype.name, res_id))
    current = await svc.repo.current(conn, rtype.name, res_id, for_update=True)
    if current is None:
        raise FhirError(Category.NOT_FOUND, f"{rtype.name}/{res_id} is not known")
    if current.deleted or current.content is None:
        raise gone(rtype.name, res_id, current.version)
    check_if_match(f"{rtype.name}/{res_id}", current, if_match)
    resource = _checked(svc, rtype, res_id, patcher(orjson.loads(current.content), rtype.model))
    if same_content(current.content, resource):
        return WriteResult(200, current)  # no-op: no new version, like an unchanged PUT
    # store_version rather than update's _apply: same storage and hooks, but history records PATCH.
    stored = await store_version(svc, ctx, conn, rtype, current, resource, now_ms(), "PATCH")
    return WriteResult(200, stored)


async def patch_in(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    rtype: ResourceType,
    res_id: str,
    patch_document: Any,
    kind: PatchKind,
    if_match: int | None = None,
) -> WriteResult:
    """Patch inside the caller's unit of work (e.g. a transaction Bundle entry).

    patch_document is parsed JSON: the list of operations for kind "json-patch" (from a Binary's data in a
    Bundle), the Parameters resource for "fhirpath-patch"; patch_kind() maps a content type to the kind.
    Raises FhirError (400 malformed, 404, 410, 412, 422) or VersionConflict when a concurrent writer won.
    """
    patcher = compile_patch(patch_document, kind, rtype.name)
    return await _patch_current(svc, ctx, conn, rtype, res_id, patcher, if_match)


async def patch(
    svc: FhirService,
    ctx: RequestContext,
    res_type: str,
    res_id: str,
    content_type: str,
    body: bytes,
    if_match: int | None,
) -> WriteResult:
    rtype = svc.resource_type(res_type)
    patcher = compile_patch(parse_json(body), patch_kind(content_type), res_type)
    return await in_unit_of_work(
        svc,
        lambda conn: _patch_current(svc, ctx, conn, rtype, res_id, patcher, if_match),
        f"Patch of {res_type}/{res_id}",
        if_match=if_match is not None,
    )
