"""$reindex: load the SearchParameter resources stored on the server into the registry, then rebuild the
index rows of every resource (system level) or of one type, in batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from app.fhir.context import RequestContext
from app.fhir.hooks import OperationEvent, WriteEvent
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


async def reindex(svc: FhirService, ctx: RequestContext, res_type: str | None) -> ReindexReport:
    if res_type is not None:
        svc.resource_type(res_type)
    if svc.hooks.before_operation:
        await svc.hooks.run_before_operation(OperationEvent(ctx, "$reindex", res_type))
    report = ReindexReport()
    await load_stored_search_parameters(svc, report)
    types = [res_type] if res_type else None
    after = 0
    while True:
        async with svc.repo.writer() as conn:
            batch = await svc.repo.live_batch(conn, types, after, BATCH)
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
                        ctx,
                        conn,
                        "reindex",
                        stored.res_type,
                        stored.res_id,
                        resource,
                        stored.version,
                        stored.pk,
                    )
                    await svc.hooks.run_on_reindex(event)
        if not batch:
            return report
        report.resources += len(batch)
        after = batch[-1].pk
