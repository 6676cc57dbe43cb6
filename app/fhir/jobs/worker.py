"""The job worker: claims a queued job (or one whose holder's lease ended), runs its steps as the principal
that started it, and records each step's state, progress and file in one unit of work with the renewed
lease. So a job survives a restart (another process, or this one restarted, takes it over when the lease
ends and goes on from the last step), a cancelled job stops at its next step, and a file is stored once.

Between steps the worker rests in proportion to the step's time (JobConfig.duty_cycle), so a long job
leaves the database and the event loop to interactive requests. Logs name the job and its kind, never
what it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from app.fhir.interactions.export import EXPORT
from app.fhir.interactions.reindex import REINDEX
from app.fhir.jobs.queue import STORE
from app.fhir.jobs.spec import JobConfig, JobKind, Step
from app.fhir.outcome import Category, FhirError
from app.fhir.service import FhirService, now_ms
from app.store.jobs import COMPLETED, FAILED, Job

log = logging.getLogger("helsebro.jobs")

KINDS: dict[str, JobKind] = {kind.name: kind for kind in (REINDEX, EXPORT)}
_PURGE_EVERY = 600.0  # seconds between purges of finished jobs
_FILES = "_files"  # the worker's own key in a job's state: how many files it has stored


class _LeaseLost(Exception):
    """The job was cancelled or taken over: roll back the step's record and stop."""


class JobWorker:
    """Runs jobs (unless `run_jobs` is off: a process that only serves requests), and in every process
    watches for $reindex jobs completed by any process, so each process's search registry and
    CapabilityStatement follow (`on_reindexed`)."""

    def __init__(
        self,
        svc: FhirService,
        config: JobConfig,
        on_finished: Callable[[str], None] | None = None,
        on_reindexed: Callable[[], Awaitable[None]] | None = None,
        run_jobs: bool = True,
    ) -> None:
        self.svc = svc
        self.config = config
        self.on_finished = on_finished  # called with the kind of each job that completed here
        self.on_reindexed = on_reindexed
        self.run_jobs = run_jobs
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._next_purge = 0.0
        self._reindexed: datetime | None = None  # the last completed $reindex this process has followed
        self._watching = False

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="job-worker")

    def wake(self) -> None:
        """A job was submitted: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop now; a job cut short keeps its lease and is taken over when the lease ends."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._follow_reindex()
                ran = await self._run_one() if self.run_jobs else False
                await self._purge()
            except Exception as exc:  # a database outage must not end the worker; try again later
                log.error("job round failed (%s)", type(exc).__name__)
                ran = False
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)

    async def _follow_reindex(self) -> None:
        """Reload the stored search parameters when another process (or this one) completed a $reindex
        since the last look; the first look only notes where things stand (start-up loaded them)."""
        if self.on_reindexed is None:
            return
        async with self.svc.repo.reader() as conn:
            latest = await STORE.last_completed(conn, "reindex")
        if not self._watching:
            self._watching, self._reindexed = True, latest
            return
        if latest is not None and (self._reindexed is None or latest > self._reindexed):
            self._reindexed = latest
            await self.on_reindexed()

    async def _run_one(self) -> bool:
        now = now_ms()
        async with self.svc.repo.reader() as conn:
            if not await STORE.has_runnable(conn, now):
                return False  # idle: no write transaction
        lease = uuid.uuid4().hex
        async with self.svc.repo.writer() as conn:
            job = await STORE.claim(conn, now, lease, self._lease_end(now))
        if job is None:
            return False
        log.info("job %s (%s) started", job.id, job.kind)
        await self._execute(job, lease)
        return True

    def _lease_end(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.config.lease_seconds)

    async def _execute(self, job: Job, lease: str) -> None:
        kind = KINDS.get(job.kind)
        ctx = self.svc.principals.reader(job.principal, str(job.params.get("base", "")), f"job-{job.id}")
        if kind is None:
            await self._fail(job, lease, FhirError(Category.FAULT, f"Unknown job kind '{job.kind}'"))
            return
        if ctx is None:
            why = "The client that started the job can no longer be identified"
            await self._fail(job, lease, FhirError(Category.FORBIDDEN, why))
            return
        state = job.state
        while not self._stopping:
            started = time.monotonic()
            try:
                step = await kind.step(self.svc, ctx, job.params, state, self.config.batch_size)
                await self.svc.principals.settle(ctx)  # nothing is stored unaudited
            except FhirError as exc:
                await self._fail(job, lease, exc)
                return
            except Exception as exc:
                log.error("job %s (%s): a step failed (%s)", job.id, job.kind, type(exc).__name__)
                await self._fail(job, lease, FhirError(Category.FAULT, "The job failed; see the server log"))
                return
            try:
                state = await self._record(job, lease, state, step)
            except _LeaseLost:
                log.info("job %s (%s) stopped: cancelled or taken over", job.id, job.kind)
                return
            if step.result is not None:
                log.info("job %s (%s) completed", job.id, job.kind)
                if self.on_finished is not None:
                    self.on_finished(job.kind)
                return
            await self._rest(time.monotonic() - started)

    async def _record(self, job: Job, lease: str, state: dict[str, object], step: Step) -> dict[str, object]:
        """Store the step's file and state (or the result) under the lease, in one unit of work."""
        files = int(str(state.get(_FILES, 0)))
        new_state = {**step.state, _FILES: files + (1 if step.output else 0)}
        now = now_ms()
        async with self.svc.repo.writer() as conn:
            if step.output is not None:
                out = step.output
                await STORE.add_output(conn, job.id, files + 1, out.res_type, out.count, out.content)
            if step.result is not None:
                held = await STORE.finish(conn, job.id, lease, COMPLETED, step.result, step.progress, now)
            else:
                until = self._lease_end(now)
                held = await STORE.checkpoint(conn, job.id, lease, until, new_state, step.progress, now)
            if not held:
                raise _LeaseLost
        return new_state

    async def _fail(self, job: Job, lease: str, error: FhirError) -> None:
        log.info("job %s (%s) failed (HTTP %s)", job.id, job.kind, error.status)
        result = {"status": error.status, "outcome": error.outcome()}
        async with self.svc.repo.writer() as conn:
            await STORE.finish(conn, job.id, lease, FAILED, result, None, now_ms())

    async def _rest(self, step_seconds: float) -> None:
        duty = min(max(self.config.duty_cycle, 0.01), 1.0)
        pause = step_seconds * (1.0 - duty) / duty
        if pause > 0:
            await asyncio.sleep(pause)

    async def _purge(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + _PURGE_EVERY
        before = now_ms() - timedelta(hours=self.config.retention_hours)
        async with self.svc.repo.writer() as conn:
            purged = await STORE.purge(conn, before)
        if purged:
            log.info("purged %d finished jobs", purged)
