"""THE ENGINE API: what REST handlers, bundle entries, operations, domain packs, adapters and jobs call.

Every call carries a RequestContext whose principal names who acts: the verified caller, or a
SystemPrincipal with a reason for work the server does on its own account. A call without one is refused
before anything is read (MissingPrincipal, a programming error). The calls run the interaction cores, so
the access policy (row filters in every query, decisions on single resources and conditional matches)
and the audit apply to every path without anyone remembering to call them. Results are stored bytes or
parsed resources; Bundles are built only for the HTTP edge (`search_bundle`, `history_bundle`,
`bundle_response`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext, caller_key, require_principal
from app.fhir.cpu_pool import run_cpu_bound
from app.fhir.interactions import create as create_ix
from app.fhir.interactions import delete as delete_ix
from app.fhir.interactions import export as export_ix
from app.fhir.interactions import history as history_ix
from app.fhir.interactions import patch as patch_ix
from app.fhir.interactions import read as read_ix
from app.fhir.interactions import reindex as reindex_ix
from app.fhir.interactions import search as search_ix
from app.fhir.interactions import transaction as transaction_ix
from app.fhir.interactions import update as update_ix
from app.fhir.interactions.delete import DeleteResult
from app.fhir.interactions.reindex import ReindexReport
from app.fhir.interactions.search import SearchRequest
from app.fhir.interactions.transaction.entries import bundle_entries
from app.fhir.interactions.transaction.results import EntryResult
from app.fhir.jobs import queue as job_queue
from app.fhir.jobs.queue import JobView
from app.fhir.service import FhirService, WriteResult
from app.store.replica import acting_for
from app.store.repository import CurrentVersion, HistoryRow

P = ParamSpec("P")
R = TypeVar("R")


def _with_principal(
    method: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    """Refuse the call unless its context (the first argument after self) names a principal; the call
    then acts for that principal (app/store/replica.py)."""

    @wraps(method)
    async def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = args[1] if len(args) > 1 else kwargs.get("ctx")
        if not isinstance(ctx, RequestContext):
            raise TypeError(f"{method.__name__} needs a RequestContext")
        # Reads on this caller's behalf may be served by a replica, except right after its own writes.
        with acting_for(caller_key(require_principal(ctx))):
            return await method(*args, **kwargs)

    return checked


@dataclass(frozen=True)
class BundleResult:
    bundle_type: str  # batch or transaction
    entries: list[EntryResult]  # per entry, in the Bundle's order: status, location, stored bytes


@dataclass
class Engine:
    svc: FhirService

    # -- reads ------------------------------------------------------------------------------------------
    @_with_principal
    async def read(self, ctx: RequestContext, res_type: str, res_id: str) -> CurrentVersion:
        return await read_ix.read(self.svc, ctx, res_type, res_id)

    @_with_principal
    async def read_resource(self, ctx: RequestContext, reference: str | None) -> dict[str, Any] | None:
        """The parsed current content of a literal relative reference ("Type/id"); None for anything else
        (absolute, contained or identifier-only references)."""
        return await read_ix.read_reference(self.svc, ctx, reference)

    @_with_principal
    async def vread(self, ctx: RequestContext, res_type: str, res_id: str, version_id: str) -> HistoryRow:
        return await read_ix.vread(self.svc, ctx, res_type, res_id, version_id)

    @_with_principal
    async def search_bundle(self, ctx: RequestContext, request: SearchRequest) -> bytes:
        """A searchset Bundle for the HTTP edge."""
        return await search_ix.search(self.svc, ctx, request)

    @_with_principal
    async def search(
        self,
        ctx: RequestContext,
        res_type: str,
        criteria: list[tuple[str, str]],
        limit: int,
        compartment: tuple[str, str] | None = None,
        *,
        conn: AsyncConnection | None = None,
    ) -> list[dict[str, Any]]:
        """Every match, parsed, for operations that search on the caller's behalf; more than `limit`
        matches is a 413, never a partial answer. `conn`: see `create`."""
        return await search_ix.search_all(self.svc, ctx, res_type, criteria, limit, compartment, conn)

    @_with_principal
    async def history_bundle(
        self,
        ctx: RequestContext,
        res_type: str | None,
        res_id: str | None,
        params: dict[str, str],
        strict: bool = False,
    ) -> bytes:
        return await history_ix.history(self.svc, ctx, res_type, res_id, params, strict=strict)

    # -- writes ------------------------------------------------------------------------------------------
    @_with_principal
    async def create(
        self,
        ctx: RequestContext,
        res_type: str,
        body: Any,
        if_none_exist: str | None = None,
        *,
        conn: AsyncConnection | None = None,
    ) -> WriteResult:
        """`conn`: a write hook's unit of work (WriteEvent.conn), for data a pack derives from a write:
        written with it, through the same hooks, policy and audit, or rolled back with it."""
        return await create_ix.create(self.svc, ctx, res_type, body, if_none_exist, conn)

    @_with_principal
    async def update(
        self,
        ctx: RequestContext,
        res_type: str,
        res_id: str,
        body: Any,
        if_match: int | None = None,
        *,
        conn: AsyncConnection | None = None,
    ) -> WriteResult:
        """`conn`: see `create`."""
        return await update_ix.update(self.svc, ctx, res_type, res_id, body, if_match, conn)

    @_with_principal
    async def conditional_update(
        self, ctx: RequestContext, res_type: str, query: str, body: Any, if_match: int | None = None
    ) -> WriteResult:
        return await update_ix.conditional_update(self.svc, ctx, res_type, query, body, if_match)

    @_with_principal
    async def patch(
        self,
        ctx: RequestContext,
        res_type: str,
        res_id: str,
        content_type: str,
        body: bytes,
        if_match: int | None = None,
    ) -> WriteResult:
        return await patch_ix.patch(self.svc, ctx, res_type, res_id, content_type, body, if_match)

    @_with_principal
    async def delete(
        self,
        ctx: RequestContext,
        res_type: str,
        res_id: str,
        if_match: int | None = None,
        *,
        conn: AsyncConnection | None = None,
    ) -> DeleteResult:
        """`conn`: see `create`."""
        return await delete_ix.delete(self.svc, ctx, res_type, res_id, if_match, conn)

    @_with_principal
    async def conditional_delete(
        self, ctx: RequestContext, res_type: str, query: str, if_match: int | None = None
    ) -> DeleteResult:
        return await delete_ix.conditional_delete(self.svc, ctx, res_type, query, if_match)

    @_with_principal
    async def transaction(self, ctx: RequestContext, body: Any) -> BundleResult:
        """A parsed batch or transaction Bundle, run entry by entry through the same interaction cores;
        a failing transaction raises FhirError naming the entry (nothing is written)."""
        bundle_type, raw = bundle_entries(body)
        return BundleResult(bundle_type, await transaction_ix.run_bundle(self.svc, ctx, bundle_type, raw))

    @_with_principal
    async def bundle_response(self, ctx: RequestContext, body: Any, prefer_return: str) -> bytes:
        """The batch-response or transaction-response Bundle for the HTTP edge."""
        return await transaction_ix.process_bundle(self.svc, ctx, body, prefer_return)

    # -- operations -------------------------------------------------------------------------------------
    @_with_principal
    async def reindex(self, ctx: RequestContext, res_type: str | None) -> ReindexReport:
        return await reindex_ix.reindex(self.svc, ctx, res_type)

    @_with_principal
    async def cpu_bound(self, ctx: RequestContext, fn: Callable[..., R], *args: Any) -> R:
        """A pure function (module-level, picklable arguments and result, reading no storage) in the
        service's worker processes when it has them (CPU_PROCESSES), else here: e.g. reading a KITH
        message. Part of the work of a call made for `ctx`, like every entry point."""
        return await run_cpu_bound(self.svc.cpu, fn, *args)

    # -- asynchronous jobs (FHIR async pattern) ---------------------------------------------------------
    @_with_principal
    async def start_reindex(self, ctx: RequestContext, res_type: str | None, request_url: str) -> str:
        """$reindex as a job; returns the job id. Refused at once when the caller may not start it."""
        await reindex_ix.check_reindex(self.svc, ctx, res_type)
        return await job_queue.submit(self.svc, ctx, "reindex", request_url, {"type": res_type})

    @_with_principal
    async def start_export(
        self, ctx: RequestContext, request: export_ix.ExportRequest, request_url: str
    ) -> str:
        """$export as a job; returns the job id. The kick-off's parameters and the caller's right to
        export are checked at once; every read of the job is then the caller's own, audited search."""
        params = await export_ix.plan_export(self.svc, ctx, request)
        return await job_queue.submit(self.svc, ctx, "export", request_url, params)

    @_with_principal
    async def job_status(self, ctx: RequestContext, job_id: str) -> JobView:
        return await job_queue.status(self.svc, ctx, job_id)

    @_with_principal
    async def cancel_job(self, ctx: RequestContext, job_id: str) -> None:
        await job_queue.cancel(self.svc, ctx, job_id)

    @_with_principal
    async def job_file(self, ctx: RequestContext, job_id: str, seq: int) -> bytes:
        return await job_queue.output(self.svc, ctx, job_id, seq)


def entry_resource(entry: EntryResult) -> dict[str, Any] | None:
    """An entry's stored resource, parsed (None when the entry has none, e.g. a hidden match)."""
    return orjson.loads(entry.resource) if entry.resource is not None else None


# The entry points that read or write data: a test holds each to refusing a context without a principal.
ENTRY_POINTS = (
    "read",
    "read_resource",
    "vread",
    "search_bundle",
    "search",
    "history_bundle",
    "create",
    "update",
    "conditional_update",
    "patch",
    "delete",
    "conditional_delete",
    "transaction",
    "bundle_response",
    "reindex",
    "cpu_bound",
    "start_reindex",
    "start_export",
    "job_status",
    "cancel_job",
    "job_file",
)
