"""Storage of asynchronous jobs and their output files. Everything SQL about jobs lives here.

Claims are compare-and-set updates (a queued job, or a running one whose lease has ended), so two server
processes never run one job at once on either database. Every later write of a running job names its
lease and only applies while the job is still running under it: a cancelled job, or one taken over after
its holder stalled, stops at its next step without writing anything more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import job, job_output

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
FINISHED = (COMPLETED, FAILED, CANCELLED)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    status: str
    request: str
    params: dict[str, Any]
    principal: str | None
    state: dict[str, Any]
    progress: str | None
    result: dict[str, Any] | None
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class OutputFile:
    seq: int
    res_type: str
    count: int


_COLUMNS = (
    job.c.id,
    job.c.kind,
    job.c.status,
    job.c.request,
    job.c.params,
    job.c.principal,
    job.c.state,
    job.c.progress,
    job.c.result,
    job.c.created,
    job.c.updated,
)


def _job(row: Any) -> Job:
    (id_, kind, status, request, params, principal, state, progress, result, created, updated) = row
    return Job(
        id_,
        kind,
        status,
        request,
        orjson.loads(params),
        principal,
        orjson.loads(state),
        progress,
        None if result is None else orjson.loads(result),
        created,
        updated,
    )


def _runnable(now: datetime) -> Any:
    return or_(job.c.status == QUEUED, and_(job.c.status == RUNNING, job.c.lease_until < now))


def _held(job_id: str, lease: str) -> Any:
    return and_(job.c.id == job_id, job.c.status == RUNNING, job.c.lease == lease)


class JobStore:
    async def add(
        self,
        conn: AsyncConnection,
        job_id: str,
        kind: str,
        request: str,
        params: dict[str, Any],
        principal: str | None,
        now: datetime,
    ) -> None:
        await conn.execute(
            insert(job).values(
                id=job_id,
                kind=kind,
                status=QUEUED,
                request=request,
                params=orjson.dumps(params).decode(),
                principal=principal,
                state="{}",
                created=now,
                updated=now,
            )
        )

    async def get(self, conn: AsyncConnection, job_id: str) -> Job | None:
        row = (await conn.execute(select(*_COLUMNS).where(job.c.id == job_id))).first()
        return None if row is None else _job(row)

    async def has_runnable(self, conn: AsyncConnection, now: datetime) -> bool:
        """A cheap read that spares idle polls a write transaction."""
        found = await conn.execute(select(job.c.id).where(_runnable(now)).limit(1))
        return found.first() is not None

    async def claim(
        self, conn: AsyncConnection, now: datetime, lease: str, lease_until: datetime
    ) -> Job | None:
        """Take the oldest runnable job, or None when there is none (or another process took it)."""
        candidate = (
            await conn.execute(
                select(job.c.id).where(_runnable(now)).order_by(job.c.created, job.c.id).limit(1)
            )
        ).first()
        if candidate is None:
            return None
        taken = await conn.execute(
            update(job)
            .where(job.c.id == candidate[0], _runnable(now))
            .values(status=RUNNING, lease=lease, lease_until=lease_until, updated=now)
        )
        return await self.get(conn, candidate[0]) if taken.rowcount == 1 else None

    async def checkpoint(
        self,
        conn: AsyncConnection,
        job_id: str,
        lease: str,
        lease_until: datetime,
        state: dict[str, Any],
        progress: str,
        now: datetime,
    ) -> bool:
        """Record a step's state and renew the lease; False when the job is no longer held (cancelled or
        taken over): the caller's unit of work must then roll back the step's writes."""
        done = await conn.execute(
            update(job)
            .where(_held(job_id, lease))
            .values(
                state=orjson.dumps(state).decode(),
                progress=progress[:200],
                lease_until=lease_until,
                updated=now,
            )
        )
        return done.rowcount == 1

    async def finish(
        self,
        conn: AsyncConnection,
        job_id: str,
        lease: str,
        status: str,
        result: dict[str, Any],
        progress: str | None,
        now: datetime,
    ) -> bool:
        done = await conn.execute(
            update(job)
            .where(_held(job_id, lease))
            .values(
                status=status,
                result=orjson.dumps(result).decode(),
                progress=progress,
                lease=None,
                lease_until=None,
                updated=now,
            )
        )
        return done.rowcount == 1

    async def cancel(self, conn: AsyncConnection, job_id: str, now: datetime) -> None:
        """Cancel a job (a running one stops at its next step) and drop its files."""
        await conn.execute(
            update(job)
            .where(job.c.id == job_id)
            .values(status=CANCELLED, lease=None, lease_until=None, updated=now)
        )
        await conn.execute(delete(job_output).where(job_output.c.job_id == job_id))

    async def add_output(
        self, conn: AsyncConnection, job_id: str, seq: int, res_type: str, count: int, content: bytes
    ) -> None:
        await conn.execute(
            insert(job_output).values(job_id=job_id, seq=seq, res_type=res_type, count=count, content=content)
        )

    async def outputs(self, conn: AsyncConnection, job_id: str) -> list[OutputFile]:
        rows = await conn.execute(
            select(job_output.c.seq, job_output.c.res_type, job_output.c.count)
            .where(job_output.c.job_id == job_id)
            .order_by(job_output.c.seq)
        )
        return [OutputFile(*row) for row in rows]

    async def output(self, conn: AsyncConnection, job_id: str, seq: int) -> bytes | None:
        row = (
            await conn.execute(
                select(job_output.c.content).where(job_output.c.job_id == job_id, job_output.c.seq == seq)
            )
        ).first()
        return None if row is None else bytes(row[0])

    async def last_completed(self, conn: AsyncConnection, kind: str) -> datetime | None:
        """When the most recent job of `kind` completed (in any process), or None."""
        found = await conn.execute(
            select(func.max(job.c.updated)).where(job.c.kind == kind, job.c.status == COMPLETED)
        )
        value: datetime | None = found.scalar_one()
        return value

    async def purge(self, conn: AsyncConnection, finished_before: datetime) -> int:
        """Drop jobs (and their files) that finished before the given time."""
        old = select(job.c.id).where(job.c.status.in_(FINISHED), job.c.updated < finished_before)
        await conn.execute(delete(job_output).where(job_output.c.job_id.in_(old)))
        gone = await conn.execute(delete(job).where(job.c.id.in_(old.scalar_subquery())))
        return int(gone.rowcount)
