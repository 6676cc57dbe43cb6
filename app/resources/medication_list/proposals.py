"""The responsible doctor's answer to a proposed change of the multidose part:
`POST /Task/{id}/$multidose-decision` with `decision` (accept or reject) and `reason`.

Accepting applies the one proposed change to the list as it is now (one engine transaction: the
statement, its Provenance, the List under its current version, and the Task completed); rejecting
records the reason on the Task. Only the responsible doctor's organisation may decide (README.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.context import RequestContext
from app.fhir.engine import Engine, entry_resource
from app.fhir.http import etag, fhir_response, operation_body, response_media_type
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError
from app.resources.medication_list import guard, multidose
from app.resources.medication_list.codes import MULTIDOSE_PROPOSAL, TASK_CODE_SYSTEM, Aspect, ChangeKind
from app.resources.medication_list.diff import Change
from app.resources.medication_list.model import instant
from app.resources.medication_list.operations import TAGS, ReconcileInput, apply_bundle, read_shared

Resource = dict[str, Any]


def is_proposal(task: Resource) -> bool:
    codings = (task.get("code") or {}).get("coding") or []
    return any(c.get("system") == TASK_CODE_SYSTEM and c.get("code") == MULTIDOSE_PROPOSAL for c in codings)


def _inputs(task: Resource) -> dict[str, list[Resource]]:
    found: dict[str, list[Resource]] = {}
    for part in task.get("input") or []:
        found.setdefault((part.get("type") or {}).get("text", ""), []).append(part)
    return found


def proposed_change(task: Resource, current: dict[str, Resource]) -> Change:
    """The Change the Task proposes, against the statements on the list now (by id)."""
    inputs = _inputs(task)
    kind = ChangeKind(inputs["kind"][0]["valueCode"])
    shared = None
    if "shared" in inputs:
        shared_id = inputs["shared"][0]["valueReference"]["reference"].split("/")[-1]
        shared = current.get(shared_id)
        if shared is None:
            raise FhirError(
                Category.UNPROCESSABLE, "The medicine the proposal changes is no longer on the list"
            )
    contained = {f"#{c.get('id')}": c for c in task.get("contained") or []}
    incoming = None
    if "proposed" in inputs:
        incoming = {
            k: v
            for k, v in contained[inputs["proposed"][0]["valueReference"]["reference"]].items()
            if k != "id"
        }
    aspects = tuple(Aspect(a["valueCode"]) for a in inputs.get("aspect", []))
    return Change(kind, inputs["key"][0]["valueString"], shared, incoming, aspects)


def decided(task: Resource, status: str, reason: str, at: datetime) -> Resource:
    result = {k: v for k, v in task.items() if k != "meta"}
    result |= {"status": status, "lastModified": instant(at), "statusReason": {"text": reason}}
    return result


async def decide(engine: Engine, ctx: RequestContext, task_id: str, accept: bool, reason: str) -> Resource:
    current_task = await engine.read(ctx, "Task", task_id)
    assert current_task.content is not None
    task: Resource = orjson.loads(current_task.content)
    if not is_proposal(task) or task.get("status") != "requested":
        raise FhirError(
            Category.UNPROCESSABLE, f"Task/{task_id} is not an open multidose proposal", "business-rule"
        )
    patient_id = str((task.get("for") or {}).get("reference", "")).split("/")[-1]
    shared = await read_shared(engine, ctx, patient_id)
    owner = multidose.responsible(shared.medication_list)
    orgnrs = (getattr(ctx.principal, "orgnr", None), getattr(ctx.principal, "child_orgnr", None))
    if owner is None or not multidose.may_change(owner, orgnrs):
        raise FhirError(
            Category.FORBIDDEN, "Only the multidose-responsible doctor's organisation decides", "forbidden"
        )
    at = datetime.now(UTC)
    guard.operation_writes(ctx)
    task_entry = {
        "resource": decided(task, "completed" if accept else "rejected", reason, at),
        "request": {"method": "PUT", "url": f"Task/{task_id}", "ifMatch": etag(current_task.version)},
    }
    if accept:
        assert shared.medication_list is not None
        try:
            change = proposed_change(task, {s["id"]: s for s in shared.statements})
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise FhirError(
                Category.UNPROCESSABLE, f"Task/{task_id} does not hold a readable proposal"
            ) from None
        data = ReconcileInput([], apply=True, reason=reason)
        bundle = apply_bundle(shared, shared.medication_list, [change], [], data, ctx, patient_id, at)
        bundle["entry"].append(task_entry)
    else:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [task_entry]}
    result = await engine.transaction(ctx, bundle)
    stored = entry_resource(result.entries[-1])
    assert stored is not None
    return stored


async def decision_operation(res_id: str, request: Request) -> Response:
    body = await operation_body(request) or {}
    if not isinstance(body, dict) or body.get("resourceType", "Parameters") != "Parameters":
        raise FhirError(Category.INVALID, "$multidose-decision takes a Parameters body")
    values = {p.get("name"): p for p in (body.get("parameter") or []) if isinstance(p, dict)}
    decision = (values.get("decision") or {}).get("valueCode")
    if decision not in ("accept", "reject"):
        raise FhirError(Category.INVALID, "decision must be the code accept or reject", "required")
    reason = (values.get("reason") or {}).get("valueString") or (
        "Akseptert" if decision == "accept" else "Avvist"
    )
    ctx = request_context(request)
    task = await decide(fhir_engine(request), ctx, res_id, decision == "accept", str(reason))
    headers = {"ETag": etag(int(task["meta"]["versionId"]))}
    return fhir_response(request, orjson.dumps(task), 200, headers, response_media_type(request))


OPERATIONS = (
    Operation(
        "multidose-decision",
        "instance",
        "POST",
        decision_operation,
        "Accept or reject a proposed change to the multidose part of a medication list",
        types=("Task",),
        description="For the multidose-responsible doctor's organisation; accepting applies the change.",
        parameters=(
            Parameter("decision", "in", "code", 1, "1", "accept or reject"),
            Parameter("reason", "in", "string", 0, "1", "Why; recorded on the Task and the Provenance"),
            Parameter("return", "out", "Task", 1, "1", "The Task, completed or rejected"),
        ),
        affects_state=True,
        tags=TAGS,
    ),
)
