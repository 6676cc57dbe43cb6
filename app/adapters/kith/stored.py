"""A stored referral as the KITH model: the ServiceRequest, its Task and everything they refer to, read
through the engine with the caller's context (so the access policy and the audit apply)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.kith.from_fhir import referral_from_resources
from app.adapters.kith.model import Referral
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.outcome import Category, FhirError
from app.fhir.search.values import escape_value

Json = dict[str, Any]
READ_CAP = 200  # resources of one type and level a referral may refer to (more is refused with 413)
REFERENCE_DEPTH = 4  # ServiceRequest -> PractitionerRole -> Organization -> partOf -> partOf


def _references(resource: Any, out: set[str]) -> None:
    if isinstance(resource, dict):
        for key, value in resource.items():
            if key == "reference" and isinstance(value, str) and value.count("/") == 1:
                out.add(value)
            else:
                _references(value, out)
    elif isinstance(resource, list):
        for item in resource:
            _references(item, out)


async def find_one(engine: Engine, ctx: RequestContext, res_type: str, identifier: Json) -> Json | None:
    """The resource of `res_type` with this identifier (system and value), read as the caller."""
    token = f"{identifier['system']}|{escape_value(str(identifier['value']))}"
    found = await engine.search(ctx, res_type, [("identifier", token)], 1)
    return found[0] if found else None


async def resolve_all(
    engine: Engine, ctx: RequestContext, roots: list[Json], *, conn: AsyncConnection | None = None
) -> dict[str, Json]:
    """Every resource the roots refer to, following references a few levels (role -> organisation ->
    parent), one `_id` search per type and level (`conn`: a write hook's unit of work)."""
    known: dict[str, Json] = {f"{r['resourceType']}/{r['id']}": r for r in roots}
    frontier = list(roots)
    for _ in range(REFERENCE_DEPTH):
        wanted: set[str] = set()
        for resource in frontier:
            _references(resource, wanted)
        by_type: dict[str, list[str]] = {}
        for reference in sorted(wanted - known.keys()):
            res_type, res_id = reference.split("/")
            if engine.svc.registry.get(res_type) is not None:
                by_type.setdefault(res_type, []).append(res_id)
        if not by_type:
            break
        frontier = []
        for res_type, ids in by_type.items():
            for found in await engine.search(ctx, res_type, [("_id", ",".join(ids))], READ_CAP, conn=conn):
                known[f"{res_type}/{found['id']}"] = found
                frontier.append(found)
    return known


async def stored_referral(
    engine: Engine, ctx: RequestContext, service_request: Json, task: Json | None = None
) -> Referral:
    """The referral of a stored ServiceRequest; its Task is looked up (the latest written) unless given."""
    if task is None:
        tasks = await engine.search(
            ctx,
            "Task",
            [("focus", f"ServiceRequest/{service_request['id']}"), ("_sort", "-_lastUpdated")],
            READ_CAP,
        )
        task = tasks[0] if tasks else None
    known = await resolve_all(engine, ctx, [service_request, *([task] if task else [])])
    try:
        return referral_from_resources(service_request, task, known.get)
    except (KeyError, ValueError, TypeError) as error:
        raise FhirError(
            Category.UNPROCESSABLE,
            f"ServiceRequest/{service_request['id']} cannot be read as a KITH referral ({type(error).__name__})",
        ) from None
