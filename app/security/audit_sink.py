"""Where the security layer's audit records go, with an explicit contract for each kind of access.

- `in_unit(conn, record)`: written in the caller's unit of work, committed with the work or not at all.
  For writes: a stored change always has its audit row, a rolled-back one never does.
- `after(ctx, record, conn)`: committed by the group-commit writer (AuditWriter); the HTTP response
  waits until it is (authn awaits the request's AUDIT_WAITS), so nothing is answered unaudited. An HTTP
  request's events are queued together when its response starts (AUDIT_DEFERRED), one batch per request. For reads
  and searches, and for refusals: inside a unit of work that will roll back (a refused write, a failing
  transaction), the row is written as soon as that unit has ended, and the response still waits for it.
- Outside a request (no context: a job), `after` returns only once the row is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.service import FhirService
from app.security.audit import AuditRecord, audit_event
from app.security.audit_writer import (
    AUDIT_DEFERRED,
    AUDIT_WAITS,
    AuditWriter,
    batch_store,
    store_audit_events,
)
from app.security.principal import Principal
from app.store.repository import Repository


def audit_interaction(interaction: str, res_types: tuple[str, ...] = ("",)) -> str:
    """The engine's interaction name as the audit (FHIR restful-interaction) spells it."""
    if interaction == "search":
        return "search-type" if len(res_types) == 1 else "search-system"
    return "$everything" if interaction == "everything" else interaction


@dataclass
class AuditSink:
    svc: FhirService
    writer: AuditWriter = field(init=False)
    _later: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.writer = AuditWriter(batch_store(self.svc))

    async def close(self) -> None:
        """Store everything still owed (shutdown)."""
        if self._later:
            await asyncio.gather(*self._later, return_exceptions=True)
        await self.writer.close()

    @staticmethod
    def record(
        ctx: RequestContext,
        interaction: str,
        outcome: str,
        patients: tuple[str, ...],
        entity: tuple[str, str, int | None] | None,
        emergency: bool = False,
        query: str | None = None,
        outcome_desc: str | None = None,
        flags: tuple[str, ...] = (),
        details: tuple[tuple[str, str], ...] = (),
        principal: Principal | None = None,
    ) -> AuditRecord:
        """The record of one access by the request's caller (`principal`, when the security layer stands
        in a Principal for a SystemPrincipal)."""
        who = principal or (ctx.principal if isinstance(ctx.principal, Principal) else None)
        reason = who.emergency_reason if who else None
        return AuditRecord(
            interaction=interaction,
            outcome=outcome,
            principal=who,
            patients=patients,
            entities=(entity,) if entity else (),
            query=query,
            outcome_desc=outcome_desc,
            emergency=emergency,
            emergency_reason=(reason or "granted earlier (akuttilgang)") if emergency else None,
            request_id=ctx.request_id,
            flags=flags,
            details=details,
            service=ctx.service,
        )

    async def in_unit(self, conn: AsyncConnection, record: AuditRecord) -> None:
        """Written in `conn`'s unit of work: committed with the work, or rolled back with it."""
        await store_audit_events(self.svc, conn, [audit_event(record)])

    async def after(
        self, ctx: RequestContext | None, record: AuditRecord, conn: AsyncConnection | None = None
    ) -> None:
        """Committed on its own (see the module's contract); `conn` is the access's connection, used
        when it is a unit of work that will commit (its row then lands with it)."""
        event = audit_event(record)
        if Repository.writing():
            if conn is not None and Repository.is_write_unit(conn):
                await store_audit_events(self.svc, conn, [event])  # same transaction as the work
                return
            self._owe(ctx, event)
            return
        if ctx is not None:
            # Not awaited here: the caller still holds a database connection. The response waits for it.
            deferred = ctx.scratch.get(AUDIT_DEFERRED)
            if deferred is None:
                self.hold_response(ctx, self.writer.enqueue(event))
                return
            if not deferred:  # the request's first: its response waits for all of them, queued together
                self.hold_response(ctx, self._queue_deferred(ctx))
            deferred.append(event)
            return
        await self.writer.submit(event)

    async def _queue_deferred(self, ctx: RequestContext) -> None:
        """An HTTP request's read events, queued at once when its response starts (or, if it never does,
        when the request ends: authn), so the group commit stores them in one batch. Events after this
        point are queued one by one again."""
        events = ctx.scratch.pop(AUDIT_DEFERRED, None) or []
        await asyncio.gather(*(self.writer.enqueue(event) for event in events))

    async def denied(
        self,
        ctx: RequestContext,
        interaction: str,
        patients: tuple[str, ...],
        why: str,
        principal: Principal | None = None,
    ) -> None:
        """A refused access (outcome 4): never part of the refused unit of work, which rolls back (no
        connection is given to `after`, so the row is written on its own)."""
        record = self.record(
            ctx, audit_interaction(interaction), "4", patients, None, outcome_desc=why, principal=principal
        )
        await self.after(ctx, record)

    @staticmethod
    def hold_response(ctx: RequestContext, pending: Awaitable[Any]) -> None:
        """The request's response waits for `pending` (a record of the access written on its own), and is
        a 503 if it fails."""
        ctx.scratch.setdefault(AUDIT_WAITS, []).append(pending)

    def later(self, ctx: RequestContext | None, record: Coroutine[Any, Any, None]) -> None:
        """Write a record of the access (`record`, not yet started) on its own, once the caller has let go
        of what it holds (a unit of work that will not keep the row, a pooled connection): kept until it
        is done, shutdown included, and the response waits for it."""
        task = asyncio.create_task(record)
        self._later.add(task)
        task.add_done_callback(self._later.discard)
        if ctx is not None:
            self.hold_response(ctx, task)

    def _owe(self, ctx: RequestContext | None, event: dict[str, Any]) -> None:
        """Inside a unit of work that will not keep our row: write it as soon as that unit ends."""
        self.later(ctx, self.writer.submit(event))
