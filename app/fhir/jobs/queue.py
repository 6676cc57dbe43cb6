"""Starting jobs and asking about them: what the engine API offers the HTTP edge. A job's status, files
and cancellation are for the client that started it only; to anyone else the job does not exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.outcome import Category, FhirError
from app.fhir.service import FhirService, now_ms
from app.store.jobs import CANCELLED, Job, JobStore, OutputFile

STORE = JobStore()


@dataclass(frozen=True)
class JobView:
    job: Job
    files: list[OutputFile]  # output files, in order (bulk export)


async def submit(
    svc: FhirService, ctx: RequestContext, kind: str, request_url: str, params: dict[str, Any]
) -> str:
    """Store a job for the worker; its id names the status URL."""
    job_id = uuid.uuid4().hex
    params = {**params, "base": ctx.base_url}
    principal = svc.principals.registrant(ctx)
    async with svc.repo.writer() as conn:
        await STORE.add(conn, job_id, kind, request_url, params, principal, now_ms())
    svc.job_waker()
    return job_id


async def _own_job(svc: FhirService, ctx: RequestContext, conn: AsyncConnection, job_id: str) -> Job:
    job = await STORE.get(conn, job_id)
    if job is None or not svc.principals.same_caller(job.principal, ctx):
        raise FhirError(Category.NOT_FOUND, "No such job")
    if job.status == CANCELLED:
        raise FhirError(Category.NOT_FOUND, "The job was cancelled or its files deleted")
    return job


async def status(svc: FhirService, ctx: RequestContext, job_id: str) -> JobView:
    async with svc.repo.reader() as conn:
        job = await _own_job(svc, ctx, conn, job_id)
        files = await STORE.outputs(conn, job_id)
    return JobView(job, files)


async def cancel(svc: FhirService, ctx: RequestContext, job_id: str) -> None:
    """Cancel a queued or running job, or delete a finished one's files (the Bulk Data DELETE)."""
    async with svc.repo.writer() as conn:
        await _own_job(svc, ctx, conn, job_id)
        await STORE.cancel(conn, job_id, now_ms())


async def output(svc: FhirService, ctx: RequestContext, job_id: str, seq: int) -> bytes:
    async with svc.repo.reader() as conn:
        await _own_job(svc, ctx, conn, job_id)
        content = await STORE.output(conn, job_id, seq)
    if content is None:
        raise FhirError(Category.NOT_FOUND, "No such file")
    return content
