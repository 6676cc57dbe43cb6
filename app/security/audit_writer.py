"""Durable audit writes: group commit for reads, same-transaction inserts for writes.

A read must not answer before its AuditEvent is committed ("batched is fine, lost is not"), but one
transaction per read would make the audit the bottleneck. AuditWriter lets every request wait for its own
event while one background task commits whatever has queued up in a single transaction: while one batch
is being stored the next one fills, so the batch size follows the load.

Before taking a batch the task lingers a moment (LINGER_S) for the requests already on their way. A
commit costs far more than an event in it (on SQLite ~0.3 ms of CPU for the pages every commit rewrites,
~0.035 ms per event), and without the wait a server reading at ~600/s committed batches of 2.7 events on
average (bench.security). The wait adds at most that moment to an audited response.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.service import FhirService
from app.security.audit_store import audit_rows, insert_audit_events
from app.security.tables import audit_event, audit_patient
from app.store.repository import Repository

AuditStore = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]
# Key in a request's hook state: audit writes the response must wait for (see authn._after_audit).
AUDIT_WAITS = "audit_waits"
# Key in an HTTP request's hook state: the request's read events, queued together when its response starts
# (one batch per request: $summary's nine searches were nine commits on PostgreSQL, 30 ms a summary).
AUDIT_DEFERRED = "audit_deferred"


class AuditWriterClosed(RuntimeError):
    """The writer was shut down; the event was not stored (the request must fail, not go unaudited)."""


async def store_audit_events(
    svc: FhirService, conn: AsyncConnection, events: Sequence[dict[str, Any]]
) -> None:
    """Store AuditEvents in the caller's transaction: a write stores its audit in its own unit of work.
    (`svc` is the service whose database `conn` belongs to; the trail has its own tables.) In a writer()
    unit they are written at its end, all of them in one statement (a transaction of 2,000 creates has
    2,000 AuditEvents): committed with the work, or rolled back with it."""
    if not Repository.batch_in_unit(conn, insert_audit_events, insert_audit_events, events):
        await insert_audit_events(conn, events)


def batch_store(svc: FhirService) -> AuditStore:
    """The production store of an AuditWriter: one transaction per batch, through the database's appender
    (one trip to the database instead of five or six through the pool) where it has one."""
    appender = svc.repo.db.appender

    async def store(events: Sequence[dict[str, Any]]) -> None:
        if appender is not None:
            rows, patients = audit_rows(events)
            await appender.append([(audit_event, rows), (audit_patient, patients)])
            return
        async with svc.repo.writer() as conn:
            await insert_audit_events(conn, events)

    return store


_Waiter = tuple[dict[str, Any], "asyncio.Future[None]"]
LINGER_S = 0.0005


class AuditWriter:
    def __init__(self, store: AuditStore, max_batch: int = 500, linger_s: float = LINGER_S) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._queue: list[_Waiter] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Events queued and not yet handed to the store."""
        return len(self._queue)

    async def submit(self, event: dict[str, Any]) -> None:
        """Queue an event and return once the batch holding it is committed; raise what the store raised.

        A caller cancelled while waiting does not withdraw its event: it is still stored.
        """
        await self.enqueue(event)

    def enqueue(self, event: dict[str, Any]) -> asyncio.Future[None]:
        """Queue an event; the future is done once the batch holding it is committed (or has failed).
        For a request that must not wait here (it still holds a connection) but before it answers."""
        if self._closing:
            raise AuditWriterClosed("the audit writer is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        self._wake()
        return future

    async def close(self) -> None:
        """Store everything queued, then stop the background task (app shutdown)."""
        self._closing = True
        if self._queue or (self._task is not None and not self._task.done()):
            self._wake()  # restarts the task if it is gone, so the queue is still drained
            assert self._task is not None
            await asyncio.shield(self._task)  # a cancelled close() must not abort the last batch

    def _wake(self) -> None:
        """Start the drain task on the running loop if it is not running (first use, or it died)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._wakeup is None:
            self._loop, self._wakeup, self._task = loop, asyncio.Event(), None
        if self._task is None or self._task.done():
            # Started by whichever request audits first: in a context of its own, not a copy of that
            # request's (its principal, its unit of work's batches), which the task would keep for good.
            self._task = loop.create_task(self._drain(), name="audit-writer", context=contextvars.Context())
        self._wakeup.set()

    async def _drain(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        batch: list[_Waiter] = []
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                if self._linger_s > 0 and len(self._queue) < self._max_batch and not self._closing:
                    await asyncio.sleep(self._linger_s)  # for the events already on their way
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    await self._store([event for event, _ in batch])
                except Exception as exc:
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
                batch = []
        except asyncio.CancelledError:
            # Cancelled from outside (loop shutdown): nobody will store these, so their requests fail
            # instead of waiting forever or answering unaudited.
            failure = AuditWriterClosed("the audit writer was stopped")
            _settle(batch + self._queue, failure)
            self._queue.clear()
            raise


def _settle(batch: Sequence[_Waiter], exc: BaseException | None) -> None:
    for _, future in batch:
        if future.done():  # the waiter was cancelled; its event was stored (or failed) all the same
            continue
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)
