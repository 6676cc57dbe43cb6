"""Thin FHIR REST routes: HTTP in, interaction call, HTTP out. No business rules live here."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from app.fhir.capability import with_implementation_url
from app.fhir.context import UNAUTHENTICATED, RequestContext
from app.fhir.engine import Engine
from app.fhir.http import (
    etag,
    fhir_response,
    http_date,
    none_match,
    parse_etag_version,
    parse_http_date,
    prefer_async,
    prefer_return,
    prefer_strict,
    require_json_body,
    response_media_type,
    write_response,
)
from app.fhir.interactions import search as search_ix
from app.fhir.interactions.delete import DeleteResult
from app.fhir.interactions.reindex import report_issues
from app.fhir.operations import ANY_TYPE, Operation, Parameter
from app.fhir.outcome import Category, FhirError, informational, operation_outcome, outcome_bytes
from app.fhir.registry import patient_compartment
from app.fhir.service import HIDDEN_MATCH_MESSAGE, FhirService, WriteResult
from app.fhir.validate import parse_json


class _FhirTypeConvertor(Convertor[str]):
    """Resource type names start with a capital: /metadata, /_history and /$op never match a type route."""

    regex = "[A-Z][A-Za-z]{0,63}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _FhirIdConvertor(Convertor[str]):
    """FHIR ids (R4 2.24.0.1): no underscore, so /{type}/_history never matches an id route."""

    regex = r"[A-Za-z0-9\-.]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fhirtype", _FhirTypeConvertor())
register_url_convertor("fhirid", _FhirIdConvertor())

router = APIRouter()

FHIR_TAGS: list[str | Enum] = ["FHIR REST"]


def service(request: Request) -> FhirService:
    return request.app.state.fhir  # type: ignore[no-any-return]


def fhir_engine(request: Request) -> Engine:
    """The engine API: what every route, operation and adapter acts through."""
    return request.app.state.engine  # type: ignore[no-any-return]


def context(request: Request) -> RequestContext:
    configured: str = request.app.state.base_url
    base = configured or (lambda: str(request.base_url).rstrip("/"))
    state = request.scope.setdefault("state", {})
    # The principal is whatever an authentication middleware verified, and the hook state is shared with
    # that middleware (e.g. work the response must wait for); the engine only passes both on. Without
    # authentication (AUTH_MODE=off) the caller is named as unauthenticated; the security layer, when
    # installed, refuses that principal.
    principal = state.get("principal")
    if principal is None:
        if request.app.state.settings.auth_mode != "off":
            raise FhirError(Category.UNAUTHORIZED, "Authentication required", "login")
        principal = UNAUTHENTICATED
    return RequestContext(
        base=base,
        principal=principal,
        request_id=state.get("request_id", ""),
        scratch=state.setdefault("hook_state", {}),
    )


async def json_body(request: Request) -> Any:
    require_json_body(request)
    return parse_json(await request.body())


def _write_headers(ctx: RequestContext, result: WriteResult) -> dict[str, str]:
    stored = result.stored
    return {
        "ETag": etag(stored.version),
        "Last-Modified": http_date(stored.last_updated),
        "Location": f"{ctx.base_url}/{stored.res_type}/{stored.res_id}/_history/{stored.version}",
    }


def _write_reply(request: Request, ctx: RequestContext, result: WriteResult, verb: str) -> Response:
    stored = result.stored
    if result.hidden:
        # A conditional create matched what the caller may not read: where it is, never what it holds.
        location = {"Location": f"{ctx.base_url}/{stored.res_type}/{stored.res_id}"}
        body = outcome_bytes(informational(HIDDEN_MATCH_MESSAGE))
        return fhir_response(request, body, 200, location)
    message = f"{verb} {stored.res_type}/{stored.res_id} (version {stored.version})"
    return write_response(request, result.status, result.content, _write_headers(ctx, result), message)


def _delete_reply(request: Request, result: DeleteResult) -> Response:
    headers = {"ETag": etag(result.version)} if result.version is not None else {}
    if prefer_return(request) == "minimal":
        return Response(status_code=204, headers=headers)
    return fhir_response(request, outcome_bytes(informational(result.message)), 200, headers)


# The hottest routes first, in this order: read, create, search, update. Requests are matched against the
# routes in order, each miss costing a few microseconds; the path convertors keep type and id routes from
# shadowing one another, so the order changes nothing else.
@router.get("/{res_type:fhirtype}/{res_id:fhirid}", tags=FHIR_TAGS, summary="read")
async def read(res_type: str, res_id: str, request: Request) -> Response:
    media = response_media_type(request)
    if res_type == "OperationDefinition":  # this server's own operations first (app/fhir/operations.py)
        definition = request.app.state.operations.definition(res_id)
        if definition is not None:
            return fhir_response(request, orjson.dumps(definition), 200, None, media)
    stored = await fhir_engine(request).read(context(request), res_type, res_id)
    headers = {"ETag": etag(stored.version), "Last-Modified": http_date(stored.last_updated)}
    if _not_modified(request, stored.version, stored.last_updated):
        return Response(status_code=304, headers=headers)
    return fhir_response(request, stored.content, 200, headers, media)


def _not_modified(request: Request, version: int, last_modified: datetime) -> bool:
    """If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return none_match(if_none_match, version)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is not None:
        since = parse_http_date(if_modified_since)  # second precision, like Last-Modified
        return since is not None and last_modified.replace(microsecond=0) <= since
    return False


@router.post("/{res_type:fhirtype}", tags=FHIR_TAGS, summary="create (If-None-Exist for conditional create)")
async def create(res_type: str, request: Request) -> Response:
    response_media_type(request)
    svc, ctx = service(request), context(request)
    svc.resource_type(res_type)
    body = await json_body(request)
    result = await fhir_engine(request).create(ctx, res_type, body, request.headers.get("if-none-exist"))
    return _write_reply(request, ctx, result, "Created" if result.created else "Found existing")


@router.get("/{res_type:fhirtype}", tags=FHIR_TAGS, summary="search")
async def search(res_type: str, request: Request) -> Response:
    return await _run_search(request, (res_type,), res_type, request.query_params.multi_items())


@router.put(
    "/{res_type:fhirtype}/{res_id:fhirid}",
    tags=FHIR_TAGS,
    summary="update (update-as-create with a client id)",
)
async def update(res_type: str, res_id: str, request: Request) -> Response:
    response_media_type(request)
    svc, ctx = service(request), context(request)
    svc.resource_type(res_type)
    body = await json_body(request)
    if_match = parse_etag_version(request.headers.get("if-match"), "If-Match")
    result = await fhir_engine(request).update(ctx, res_type, res_id, body, if_match)
    return _write_reply(request, ctx, result, "Created" if result.created else "Updated")


@router.post("/", tags=FHIR_TAGS, summary="batch / transaction")
async def batch_or_transaction(request: Request) -> Response:
    media = response_media_type(request)
    body = await json_body(request)
    result = await fhir_engine(request).bundle_response(context(request), body, prefer_return(request))
    return fhir_response(request, result, 200, None, media)


@router.get("/metadata", tags=["Server"], summary="CapabilityStatement")
async def metadata(request: Request) -> Response:
    if request.app.state.base_url:
        return fhir_response(request, request.app.state.capability_bytes)
    # No BASE_URL (a local demo): the implementation is where this request was sent.
    statement = with_implementation_url(request.app.state.capability, str(request.base_url).rstrip("/"))
    return fhir_response(request, orjson.dumps(statement))


@router.get("/_history", tags=FHIR_TAGS, summary="System history")
async def history_system(request: Request) -> Response:
    response_media_type(request)
    body = await fhir_engine(request).history_bundle(
        context(request), None, None, dict(request.query_params), prefer_strict(request)
    )
    return fhir_response(request, body)


@router.get("/{res_type:fhirtype}/_history", tags=FHIR_TAGS, summary="Type history")
async def history_type(res_type: str, request: Request) -> Response:
    response_media_type(request)
    body = await fhir_engine(request).history_bundle(
        context(request), res_type, None, dict(request.query_params), prefer_strict(request)
    )
    return fhir_response(request, body)


@router.get("/{res_type:fhirtype}/{res_id:fhirid}/_history", tags=FHIR_TAGS, summary="Instance history")
async def history_instance(res_type: str, res_id: str, request: Request) -> Response:
    response_media_type(request)
    body = await fhir_engine(request).history_bundle(
        context(request), res_type, res_id, dict(request.query_params), prefer_strict(request)
    )
    return fhir_response(request, body)


@router.get("/{res_type:fhirtype}/{res_id:fhirid}/_history/{version_id}", tags=FHIR_TAGS, summary="vread")
async def vread(res_type: str, res_id: str, version_id: str, request: Request) -> Response:
    media = response_media_type(request)
    row = await fhir_engine(request).vread(context(request), res_type, res_id, version_id)
    headers = {"ETag": etag(row.version), "Last-Modified": http_date(row.last_updated)}
    return fhir_response(request, row.content, 200, headers, media)


async def _run_search(
    request: Request,
    res_types: tuple[str, ...],
    path: str,
    pairs: list[tuple[str, str]],
    compartment: tuple[str, str] | None = None,
) -> Response:
    media = response_media_type(request)
    search_request = search_ix.SearchRequest(res_types, pairs, path, prefer_strict(request), compartment)
    body = await fhir_engine(request).search_bundle(context(request), search_request)
    return fhir_response(request, body, 200, None, media)


@router.post("/{res_type:fhirtype}/_search", tags=FHIR_TAGS, summary="search (parameters in a form body)")
async def search_post(res_type: str, request: Request) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FhirError(
            Category.UNSUPPORTED_MEDIA,
            "POST _search takes application/x-www-form-urlencoded",
            "not-supported",
        )
    form = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return await _run_search(request, (res_type,), res_type, [*request.query_params.multi_items(), *form])


@router.get("/", tags=FHIR_TAGS, summary="system search (_type selects the resource types)")
async def search_system(request: Request) -> Response:
    svc = service(request)
    pairs = request.query_params.multi_items()
    type_values = [t for k, v in pairs if k == "_type" for t in v.split(",") if t]
    res_types = tuple(type_values) if type_values else _searched_by_default(svc, sorted(svc.registry.types))
    return await _run_search(request, res_types, "", pairs)


def _searched_by_default(svc: FhirService, names: list[str]) -> tuple[str, ...]:
    """The types a search without _type covers: not those kept apart (the audit trail of who saw a
    record is not the record; each $everything adds to it), which a search takes only by name."""
    return tuple(name for name in names if svc.resource_type(name).store is None)


# Status URLs of asynchronous requests: /_async/{job id} (a leading underscore never names a type).
ASYNC_STATUS = "_async"


def accepted(request: Request, ctx: RequestContext, job_id: str) -> Response:
    """202 Accepted for an asynchronous request, with where to ask for its status (FHIR async pattern)."""
    url = f"{ctx.base_url}/{ASYNC_STATUS}/{job_id}"
    body = outcome_bytes(informational(f"Accepted; ask for the status at {url}"))
    return fhir_response(request, body, 202, {"Content-Location": url})


async def _reindex(request: Request, res_type: str | None) -> Response:
    ctx = context(request)
    if prefer_async(request):
        job_id = await fhir_engine(request).start_reindex(ctx, res_type, str(request.url))
        return accepted(request, ctx, job_id)
    report = await fhir_engine(request).reindex(ctx, res_type)
    request.app.state.refresh_capability()
    return fhir_response(request, outcome_bytes(operation_outcome(report_issues(report))))


async def reindex_system(request: Request) -> Response:
    return await _reindex(request, None)


async def reindex_type(res_type: str, request: Request) -> Response:
    return await _reindex(request, res_type)


async def everything(res_id: str, request: Request) -> Response:
    svc = service(request)
    pairs = request.query_params.multi_items()
    type_values = [t for k, v in pairs if k == "_type" for t in v.split(",") if t]
    linked = [t for t in ("Patient", *sorted(patient_compartment())) if t in svc.registry.types]
    res_types = (
        tuple(t for t in type_values if t in linked) if type_values else _searched_by_default(svc, linked)
    )
    since = tuple(("_lastUpdated", f"ge{v}") for k, v in pairs if k == "_since")
    kept = [(k, v) for k, v in pairs if k in ("_count", "_cursor", "_type", "_since")]
    media = response_media_type(request)
    search_request = search_ix.SearchRequest(
        res_types, kept, f"Patient/{res_id}/$everything", prefer_strict(request), ("Patient", res_id), since
    )
    body = await fhir_engine(request).search_bundle(context(request), search_request)
    return fhir_response(request, body, 200, None, media)


_REINDEX_ASYNC = "With the header Prefer: respond-async it runs as a job: 202 with Content-Location."
_REINDEX_OUT = Parameter("return", "out", "OperationOutcome", 1, "1", "What was reindexed, per type")
OPERATIONS = (
    Operation(
        "everything",
        "instance",
        "GET",
        everything,
        "Patient $everything",
        types=("Patient",),
        description="Every resource of the patient's compartment (AuditEvents only when _type names them "
        "alone), paged with _count.",
        parameters=(
            Parameter("_since", "in", "instant", documentation="Only resources updated since then"),
            Parameter("_type", "in", "code", max="*", documentation="The resource types to return"),
            Parameter("_count", "in", "integer", documentation="Page size"),
            Parameter("return", "out", "Bundle", 1, "1", "A searchset Bundle"),
        ),
        definition_url="http://hl7.org/fhir/OperationDefinition/Patient-everything",
        tags=tuple(str(t) for t in FHIR_TAGS),
    ),
    Operation(
        "reindex",
        "system",
        "POST",
        reindex_system,
        "Rebuild all search indexes (after search parameters change)",
        description=_REINDEX_ASYNC,
        parameters=(_REINDEX_OUT,),
        affects_state=True,
    ),
    Operation(
        "reindex",
        "type",
        "POST",
        reindex_type,
        "Rebuild the search index of one type",
        types=ANY_TYPE,
        description=_REINDEX_ASYNC,
        parameters=(_REINDEX_OUT,),
        affects_state=True,
    ),
)


@router.get(
    "/Patient/{res_id:fhirid}/{res_type:fhirtype}", tags=FHIR_TAGS, summary="Patient compartment search"
)
async def compartment_search(res_id: str, res_type: str, request: Request) -> Response:
    if res_type != "Patient" and res_type not in patient_compartment():
        raise FhirError(Category.NOT_FOUND, f"{res_type} is not in the Patient compartment")
    return await _run_search(
        request,
        (res_type,),
        f"Patient/{res_id}/{res_type}",
        request.query_params.multi_items(),
        ("Patient", res_id),
    )


@router.patch(
    "/{res_type:fhirtype}/{res_id:fhirid}", tags=FHIR_TAGS, summary="patch (JSON Patch or FHIRPath Patch)"
)
async def patch(res_type: str, res_id: str, request: Request) -> Response:
    response_media_type(request)
    ctx = context(request)
    content_type = request.headers.get("content-type", "")
    if_match = parse_etag_version(request.headers.get("if-match"), "If-Match")
    body = await request.body()
    result = await fhir_engine(request).patch(ctx, res_type, res_id, content_type, body, if_match)
    return _write_reply(request, ctx, result, "Patched")


@router.put("/{res_type:fhirtype}", tags=FHIR_TAGS, summary="conditional update")
async def conditional_update(res_type: str, request: Request) -> Response:
    response_media_type(request)
    svc, ctx = service(request), context(request)
    svc.resource_type(res_type)
    body = await json_body(request)
    if_match = parse_etag_version(request.headers.get("if-match"), "If-Match")
    result = await fhir_engine(request).conditional_update(ctx, res_type, request.url.query, body, if_match)
    return _write_reply(request, ctx, result, "Created" if result.created else "Updated")


@router.delete("/{res_type:fhirtype}/{res_id:fhirid}", tags=FHIR_TAGS, summary="delete")
async def delete(res_type: str, res_id: str, request: Request) -> Response:
    response_media_type(request)
    if_match = parse_etag_version(request.headers.get("if-match"), "If-Match")
    result = await fhir_engine(request).delete(context(request), res_type, res_id, if_match)
    return _delete_reply(request, result)


@router.delete("/{res_type:fhirtype}", tags=FHIR_TAGS, summary="conditional delete")
async def conditional_delete(res_type: str, request: Request) -> Response:
    response_media_type(request)
    if_match = parse_etag_version(request.headers.get("if-match"), "If-Match")
    result = await fhir_engine(request).conditional_delete(
        context(request), res_type, request.url.query, if_match
    )
    return _delete_reply(request, result)
