"""HTTP edge of asynchronous jobs: the $export kick-offs (FHIR Bulk Data Access 2.0), and the status,
cancel and file URLs every job shares.

Status: 202 with X-Progress while the job is queued or running; once done, 200 with the job's answer (a
bulk export's manifest, or a batch-response Bundle holding the operation's response) or the failure's
status with its OperationOutcome. DELETE cancels a running job or deletes a finished one's files (202).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.fhir.api import ASYNC_STATUS, accepted, context, fhir_engine
from app.fhir.http import fhir_response, prefer_async, prefer_strict
from app.fhir.interactions.export import NDJSON, ExportRequest
from app.fhir.jobs.queue import JobView
from app.fhir.operations import Endpoint, Level, Operation, Parameter
from app.fhir.outcome import Category, FhirError, informational, outcome_bytes
from app.store.jobs import COMPLETED, FAILED

router = APIRouter()
TAGS: list[Any] = ["Bulk Data and asynchronous requests"]
RETRY_AFTER_S = "2"


async def _kick_off(request: Request, level: str, group_id: str | None = None) -> Response:
    if not prefer_async(request):
        raise FhirError(Category.INVALID, "$export needs the header Prefer: respond-async", "required")
    ctx = context(request)
    export = ExportRequest(level, group_id, request.query_params.multi_items(), prefer_strict(request))
    job_id = await fhir_engine(request).start_export(ctx, export, str(request.url))
    return accepted(request, ctx, job_id)


async def export_system(request: Request) -> Response:
    return await _kick_off(request, "system")


async def export_patients(request: Request) -> Response:
    return await _kick_off(request, "patient")


async def export_group(res_id: str, request: Request) -> Response:
    return await _kick_off(request, "group", res_id)


BULK_DATA = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition"
_EXPORT_PARAMETERS = (
    Parameter("_outputFormat", "in", "string", documentation="application/fhir+ndjson (the default)"),
    Parameter("_since", "in", "instant", documentation="Only resources updated since then"),
    Parameter("_type", "in", "string", max="*", documentation="Resource types, comma-separated"),
)


def _export(
    level: Level, endpoint: Endpoint, title: str, types: tuple[str, ...], definition: str
) -> Operation:
    return Operation(
        "export",
        level,
        "GET",
        endpoint,
        title,
        types=types,
        parameters=_EXPORT_PARAMETERS,
        definition_url=f"{BULK_DATA}/{definition}",
        tags=tuple(TAGS),
    )


OPERATIONS = (
    _export("system", export_system, "Bulk export of every type the client may search", (), "export"),
    _export(
        "type", export_patients, "Bulk export of every patient's compartment", ("Patient",), "patient-export"
    ),
    _export("instance", export_group, "Bulk export of a Group's patients", ("Group",), "group-export"),
)


def _file_url(base: str, job_id: str, seq: int) -> str:
    return f"{base}/{ASYNC_STATUS}/{job_id}/{seq}.ndjson"


def _finished_answer(request: Request, view: JobView, base: str) -> Response:
    job = view.job
    result = job.result or {}
    if job.status == FAILED:
        status = int(result.get("status", 500))
        return fhir_response(request, orjson.dumps(result.get("outcome")), status)
    if job.kind == "export":
        files = [
            {"type": f.res_type, "url": _file_url(base, job.id, f.seq), "count": f.count} for f in view.files
        ]
        manifest = {
            "transactionTime": job.params["transactionTime"],
            "request": job.request,
            "requiresAccessToken": request.app.state.settings.auth_mode != "off",
            "output": [f for f in files if f["type"] != "OperationOutcome"],
            "error": [f for f in files if f["type"] == "OperationOutcome"],
        }
        return Response(orjson.dumps(manifest), 200, media_type="application/json")
    # The FHIR async pattern's answer: a batch-response Bundle with the operation's own response.
    entry = {"response": {"status": "200 OK"}, "resource": result.get("outcome")}
    bundle = {"resourceType": "Bundle", "type": "batch-response", "entry": [entry]}
    return fhir_response(request, orjson.dumps(bundle), 200)


@router.get(f"/{ASYNC_STATUS}/{{job_id}}", tags=TAGS, summary="Status of an asynchronous request")
async def job_status(job_id: str, request: Request) -> Response:
    ctx = context(request)
    view = await fhir_engine(request).job_status(ctx, job_id)
    if view.job.status in (COMPLETED, FAILED):
        return _finished_answer(request, view, ctx.base_url)
    headers = {"X-Progress": view.job.progress or view.job.status, "Retry-After": RETRY_AFTER_S}
    return Response(None, 202, headers)


@router.delete(f"/{ASYNC_STATUS}/{{job_id}}", tags=TAGS, summary="Cancel a job, or delete its files")
async def job_cancel(job_id: str, request: Request) -> Response:
    await fhir_engine(request).cancel_job(context(request), job_id)
    return fhir_response(request, outcome_bytes(informational("The job is cancelled")), 202)


@router.get(f"/{ASYNC_STATUS}/{{job_id}}/{{seq:int}}.ndjson", tags=TAGS, summary="A bulk export file")
async def job_file(job_id: str, seq: int, request: Request) -> Response:
    content = await fhir_engine(request).job_file(context(request), job_id, seq)
    return Response(content, 200, media_type=NDJSON)
