"""$reindex: load the SearchParameter resources stored on the server into the registry, then rebuild the
index rows of every resource (system level) or of one type, in batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.fhir.context import RequestContext
from app.fhir.hooks import OperationEvent, WriteEvent
from app.fhir.jobs.spec import JobKind, Step
from app.fhir.outcome import Issue, operation_outcome
from app.fhir.registry import SearchParam
from app.fhir.search.extract import index_rows
from app.fhir.search.fhirpath import ExpressionError, compile_expression
from app.fhir.service import FhirService

BATCH = 500
_TYPES = ("number", "date", "string", "token", "reference", "quantity", "uri")


@dataclass
class ReindexReport:
    resources: int = 0
    parameters: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


async def load_stored_search_parameters(svc: FhirService, report: ReindexReport) -> None:
    """Register every active SearchParameter resource that the index can serve."""
    after = 0
    while True:
        async with svc.repo.reader() as conn:
            batch = await svc.repo.live_batch(conn, ["SearchParameter"], after, BATCH)
        if not batch:
            return
        after = batch[-1].pk
        for stored in batch:
            assert stored.content is not None
            _register(svc, orjson.loads(stored.content), report)


def _register(svc: FhirService, definition: dict[str, object], report: ReindexReport) -> None:
    code, kind, expression = definition.get("code"), definition.get("type"), definition.get("expression")
    label = f"SearchParameter/{definition.get('id')} ({code})"
    if definition.get("status") == "retired":
        return
    if not isinstance(code, str) or kind not in _TYPES or not isinstance(expression, str):
        report.rejected.append(
            f"{label}: needs a code, a supported type ({', '.join(_TYPES)}) and an expression"
        )
        return
    try:
        compile_expression(expression)
    except ExpressionError as exc:
        report.rejected.append(f"{label}: {exc}")
        return
    bases = [b for b in definition.get("base") or [] if isinstance(b, str)]  # type: ignore[attr-defined]
    unknown = [b for b in bases if b not in svc.registry.types and b not in ("Resource", "DomainResource")]
    if not bases or unknown:
        report.rejected.append(f"{label}: unknown or missing base {unknown or bases}")
        return
    targets = tuple(t for t in definition.get("target") or [] if isinstance(t, str))  # type: ignore[attr-defined]
    param = SearchParam(code, str(kind), expression, str(definition.get("url") or ""), targets)
    for base in bases:
        svc.registry.add_search_param(base, param)
    report.parameters.append(f"{','.join(bases)}:{code}")


async def check_reindex(svc: FhirService, ctx: RequestContext, res_type: str | None) -> None:
    """Refuse a reindex the caller may not start (unknown type, no maintenance scope) before it runs."""
    if res_type is not None:
        svc.resource_type(res_type)
    if svc.hooks.before_operation:
        await svc.hooks.run_before_operation(OperationEvent(ctx, "$reindex", res_type))


async def reindex_batch(
    svc: FhirService, ctx: RequestContext, res_type: str | None, after: int, limit: int
) -> tuple[int, int]:
    """Rebuild the index rows of the next `limit` live resources after pk `after`, in one unit of work.
    Returns (the last pk done, how many were done); 0 done means nothing is left."""
    types = [res_type] if res_type else None
    async with svc.repo.writer() as conn:
        batch = await svc.repo.live_batch(conn, types, after, limit)
        for stored in batch:
            assert stored.content is not None
            rtype = svc.registry.types.get(stored.res_type)
            if rtype is None:
                continue
            resource = orjson.loads(stored.content)
            rows = index_rows(rtype, resource, svc.base_url).tables()
            await svc.repo.replace_index(conn, stored.pk, rows)
            if svc.hooks.on_reindex:
                event = WriteEvent(
                    ctx, conn, "reindex", stored.res_type, stored.res_id, resource, stored.version, stored.pk
                )
                await svc.hooks.run_on_reindex(event)
    return (batch[-1].pk if batch else after), len(batch)


async def reindex(svc: FhirService, ctx: RequestContext, res_type: str | None) -> ReindexReport:
    """The whole reindex within one request (without Prefer: respond-async; the job runs the same steps)."""
    await check_reindex(svc, ctx, res_type)
    report = ReindexReport()
    await load_stored_search_parameters(svc, report)
    after = 0
    while True:
        after, done = await reindex_batch(svc, ctx, res_type, after, BATCH)
        if not done:
            return report
        report.resources += done


def report_issues(report: ReindexReport) -> list[Issue]:
    """What a reindex tells its caller, synchronously or as the finished job's answer."""
    return [
        Issue(f"Reindexed {report.resources} resources", "informational", severity="information"),
        *[
            Issue(f"Search parameter in force: {p}", "informational", severity="information")
            for p in report.parameters
        ],
        *[
            Issue(f"Search parameter not usable: {r}", "not-supported", severity="warning")
            for r in report.rejected
        ],
    ]


async def reindex_step(
    svc: FhirService, ctx: RequestContext, params: dict[str, Any], state: dict[str, Any], batch_size: int
) -> Step:
    """One step of a $reindex job: first the stored search parameters and the extent, then a batch."""
    res_type = params.get("type")
    if "after" not in state:
        report = ReindexReport()
        await load_stored_search_parameters(svc, report)
        async with svc.repo.reader() as conn:
            total = await svc.repo.count_live(conn, [res_type] if res_type else None)
        state = {"after": 0, "done": 0, "total": total, "parameters": report.parameters}
        state["rejected"] = report.rejected
        return Step(state, f"reindexed 0 of {total} resources")
    after, done = await reindex_batch(svc, ctx, res_type, int(state["after"]), batch_size)
    state = {**state, "after": after, "done": int(state["done"]) + done}
    total = max(int(state["total"]), int(state["done"]))
    progress = f"reindexed {state['done']} of {total} resources ({100 * state['done'] // max(total, 1)}%)"
    if done:
        return Step(state, progress)
    report = ReindexReport(int(state["done"]), list(state["parameters"]), list(state["rejected"]))
    return Step(state, progress, result={"outcome": operation_outcome(report_issues(report))})


REINDEX = JobKind("reindex", reindex_step)
