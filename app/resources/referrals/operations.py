"""The referral workflow as FHIR operations on Task, and the check of plain Task writes.

`POST /Task/{id}/$<action>` with a Parameters body (see README.md for each action's parameters) reads the
Task through the engine (so the access policy and the audit apply), runs the pure action from workflow.py
and writes the result with If-Match in one transaction: every transition is a new Task version, visible in
its history, and a concurrent change gives 412 instead of a lost update. A plain `PUT Task/{id}` is held
to the same transition table by a before-write hook.

A referral Task is a Task coded as one (Task.code henvisning from the pack's referral-task code system,
or the referral-task profile), whose focus is the referral's ServiceRequest (the R4 workflow pattern for
fulfilling a request); other Tasks, a lab order's for one, are left alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson
from fastapi import Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.context import RequestContext
from app.fhir.engine import Engine, entry_resource
from app.fhir.hooks import Hooks, Stage, WriteEvent
from app.fhir.http import fhir_response, operation_body, response_media_type
from app.fhir.operations import Endpoint, Operation, Parameter
from app.fhir.outcome import Category, FhirError
from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from app.resources.referrals import workflow
from app.resources.referrals.codes import REFERRAL_TASK_PROFILE, TASK_CODE_SYSTEM, TaskCode
from app.resources.referrals.parameters import OperationInput, present
from app.resources.referrals.routing import RuleSet, facts_from, load_rule_set, record_routing, route
from app.resources.referrals.taskjson import (
    Reference,
    Task,
    business_status,
    local_date,
    reference_key,
    status,
)
from app.resources.referrals.transitions import InvalidInput

OPERATION_TAGS: list[str | Enum] = ["Referrals"]


def _status_key(task: Task) -> tuple[str, str | None]:
    return status(task), business_status(task)


def is_referral_task(task: Any) -> bool:
    """A referral Task says so: Task.code from the pack's referral-task code system, or the referral-task
    profile in meta.profile. A Task that merely has a ServiceRequest as focus (a lab order, say) is not."""
    if not isinstance(task, dict):
        return False
    code = task.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if isinstance(codings, list) and any(
        isinstance(c, dict) and c.get("system") == TASK_CODE_SYSTEM and c.get("code") == TaskCode.REFERRAL
        for c in codings
    ):
        return True
    meta = task.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return isinstance(profiles, list) and REFERRAL_TASK_PROFILE in profiles


def caller_reference(ctx: RequestContext) -> Reference | None:
    """The caller as a Reference by identifier (HPR number, else organisation number), for notes and
    decisions; None for callers without either (system clients, auth off)."""
    principal = ctx.principal
    hpr = getattr(principal, "hpr", None)
    if hpr:
        display = getattr(principal, "name", None)
        return {
            "identifier": {"system": HPR_SYSTEM, "value": hpr},
            **({"display": display} if display else {}),
        }
    orgnr = getattr(principal, "orgnr", None)
    if orgnr:
        return {"identifier": {"system": ORGNR_SYSTEM, "value": orgnr}}
    return None


@dataclass(frozen=True)
class StatusChange:
    """A workflow step about to be stored: what status observers see."""

    engine: Engine
    ctx: RequestContext
    task_id: str
    old: Task
    new: Task
    at: datetime


# Returns resources to create in the same transaction as the new Task version (e.g. a status message to a
# referrer that is not on FHIR), so the message exists exactly when the change does.
StatusObserver = Callable[[StatusChange], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class ReferralConfig:
    rules: RuleSet | None = None  # the common intake's rule set, for $route
    observers: tuple[StatusObserver, ...] = ()  # called when a step changes status or businessStatus


@dataclass(frozen=True)
class Outcome:
    task: Task
    created: tuple[dict[str, Any], ...] = ()  # new resources written with the Task (an Appointment)


Action = Callable[[Task, OperationInput, datetime, Reference | None], Outcome]


def _receive(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(
        workflow.receive(task, at=at, owner=p.reference("owner"), note=p.string("note"), author=me)
    )


def _assess(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(
        workflow.assess(
            task,
            decision=present(p.code("decision", required=True)),
            at=at,
            priority=p.code("priority"),
            care_deadline=p.date("careDeadline"),
            assessor=me,
            note=p.string("note"),
        )
    )


def _forward(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    target = present(p.reference("to", required=True))
    return Outcome(
        workflow.forward(task, to=target, at=at, by=me, reason=p.string("reason"), routing_rule=None)
    )


def _offer_conversation(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    earliest, latest = present(p.date("earliest", required=True)), present(p.date("latest", required=True))
    new, appointment = workflow.offer_assessment_conversation(
        task, at=at, earliest=earliest, latest=latest, actor=p.reference("actor"), note=p.string("note")
    )
    return Outcome(new, (appointment,))


def _accept(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(workflow.accept(task, at=at, note=p.string("note"), author=me))


def _reject(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(
        workflow.reject(
            task,
            reason=present(p.code("reason", required=True)),
            at=at,
            text=p.string("text"),
            child_or_youth=p.boolean("childOrYouth"),
            author=me,
        )
    )


def _give_appointment(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    appointment = present(p.reference("appointment", required=True))
    start = present(p.date_time("start", required=True))
    return Outcome(workflow.give_appointment(task, appointment=appointment, start=start, at=at))


def _hold(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(workflow.hold(task, reason=present(p.string("reason", required=True)), at=at))


def _resume(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(workflow.resume(task, at=at))


def _start(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(workflow.start(task, at=at))


def _complete(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(workflow.complete(task, at=at, note=p.string("note"), author=me))


def _cancel(task: Task, p: OperationInput, at: datetime, me: Reference | None) -> Outcome:
    return Outcome(workflow.cancel(task, at=at, reason=p.string("reason"), by=me))


ACTIONS: dict[str, Action] = {
    "receive": _receive,
    "assess": _assess,
    "forward": _forward,
    "offer-assessment-conversation": _offer_conversation,
    "accept": _accept,
    "reject": _reject,
    "give-appointment": _give_appointment,
    "hold": _hold,
    "resume": _resume,
    "start": _start,
    "complete": _complete,
    "cancel": _cancel,
}


async def _route(engine: Engine, ctx: RequestContext, task: Task, rules: RuleSet, at: datetime) -> Outcome:
    """Common referral intake: the rule set picks the unit from the referral's facts (read through the
    engine, so the caller must be allowed to see the referral and its patient); the rule is recorded."""
    service_request = await engine.read_resource(ctx, reference_key(task.get("focus")))
    if service_request is None:
        raise InvalidInput("the Task's focus must be a literal ServiceRequest reference to route it")
    subject = reference_key(service_request.get("subject"))
    patient = await engine.read_resource(ctx, subject) if subject and subject.startswith("Patient/") else None
    intake = reference_key(task.get("owner"))
    facts = facts_from(service_request, patient, local_date(at), intake=intake)
    return Outcome(record_routing(task, route(rules, facts), at=at))


async def run_action(
    engine: Engine,
    ctx: RequestContext,
    task_id: str,
    action: str,
    body: Any,
    at: datetime | None = None,
    config: ReferralConfig | None = None,
) -> dict[str, Any]:
    """Apply one workflow action to Task/{task_id}; returns the new Task as stored."""
    config = config or ReferralConfig()
    rules = config.rules
    run = ACTIONS.get(action)
    if run is None and not (action == "route" and rules is not None):
        detail = " (no routing rule set is configured: REFERRAL_ROUTING_RULES)" if action == "route" else ""
        raise FhirError(Category.NOT_FOUND, f"Unknown referral operation ${action}{detail}")
    params = OperationInput(body)
    current = await engine.read(ctx, "Task", task_id)
    assert current.content is not None
    task = orjson.loads(current.content)
    if not is_referral_task(task):
        raise InvalidInput(f"Task/{task_id} is not a referral Task (no referral-task code or profile)")
    moment = at or datetime.now(UTC)
    if run is None:
        assert rules is not None
        outcome = await _route(engine, ctx, task, rules, moment)
    else:
        outcome = run(task, params, moment, caller_reference(ctx))
    created = list(outcome.created)
    if _status_key(outcome.task) != _status_key(task):
        change = StatusChange(engine, ctx, task_id, task, {**outcome.task, "id": task_id}, moment)
        for observer in config.observers:
            created += await observer(change)
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:created-{n}",
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]},
        }
        for n, resource in enumerate(created)
    ]
    entries.append(
        {
            "resource": {**outcome.task, "id": task_id},
            "request": {"method": "PUT", "url": f"Task/{task_id}", "ifMatch": f'W/"{current.version}"'},
        }
    )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    result = await engine.transaction(ctx, bundle)
    stored = entry_resource(result.entries[-1])
    assert stored is not None  # the caller may read the Task it just changed
    return stored


def _step_endpoint(action: str) -> Endpoint:
    async def task_operation(res_id: str, request: Request) -> Response:
        media = response_media_type(request)
        body = await operation_body(request)
        config: ReferralConfig = request.app.state.referrals
        task = await run_action(
            fhir_engine(request), request_context(request), res_id, action, body, config=config
        )
        headers = {"ETag": f'W/"{task["meta"]["versionId"]}"'}
        return fhir_response(request, orjson.dumps(task), 200, headers, media)

    return task_operation


def _in(name: str, fhir_type: str, required: bool = False, documentation: str = "") -> Parameter:
    return Parameter(name, "in", fhir_type, 1 if required else 0, "1", documentation)


_NOTE = _in("note", "string", documentation="Internal note on the Task (never shown to the patient)")
# Each action's Parameters (README.md, "Operations"), as the operation's definition lists them.
STEP_PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "receive": (
        _in("owner", "Reference", documentation="The receiving unit, when it is not the Task's owner"),
        _NOTE,
    ),
    "assess": (
        _in("decision", "code", True, "rett, ikke-rett or behov-for-vurderingssamtale"),
        _in("priority", "code", documentation="haster, hoy or ordinaer"),
        _in("careDeadline", "date", documentation="The deadline for start of care; required with rett"),
        _NOTE,
    ),
    "forward": (_in("to", "Reference", True, "The new owner"), _in("reason", "string")),
    "offer-assessment-conversation": (
        _in("earliest", "date", True),
        _in("latest", "date", True),
        _in("actor", "Reference"),
        _NOTE,
    ),
    "accept": (_NOTE,),
    "reject": (
        _in("reason", "code", True, "From the referral-rejection-reason code system"),
        _in("text", "string"),
        _in("childOrYouth", "boolean"),
    ),
    "give-appointment": (_in("appointment", "Reference", True), _in("start", "dateTime", True)),
    "hold": (_in("reason", "string", True),),
    "resume": (),
    "start": (),
    "complete": (_NOTE,),
    "cancel": (_in("reason", "string"),),
    "route": (),
}
_RETURNS = Parameter("return", "out", "Task", 1, "1", "The Task as stored, a new version")


def operations(config: ReferralConfig) -> tuple[Operation, ...]:
    """The workflow steps on referral Tasks; $route only with a rule set (REFERRAL_ROUTING_RULES)."""
    actions = [*ACTIONS, *(["route"] if config.rules is not None else [])]
    return tuple(
        Operation(
            action,
            "instance",
            "POST",
            _step_endpoint(action),
            f"Referral workflow: {action}",
            types=("Task",),
            description="A step of the referral workflow on a referral Task (README: app/resources/referrals).",
            parameters=(*STEP_PARAMETERS[action], _RETURNS),
            affects_state=True,
            tags=tuple(str(t) for t in OPERATION_TAGS),
        )
        for action in actions
    )


async def check_task_write(event: WriteEvent) -> None:
    """Plain writes of referral Tasks follow the same transition table as the operations."""
    if event.res_type != "Task" or event.resource is None:
        return
    if event.interaction == "create" or event.pk is None:
        if is_referral_task(event.resource):
            workflow.validate_create(event.resource)
        return
    old = event.previous_resource
    if old is None:  # a write over a deleted Task
        return
    if is_referral_task(old) or is_referral_task(event.resource):
        workflow.validate_update(old, event.resource)


def load_rules(path: str) -> RuleSet | None:
    """The common intake's routing rules from a JSON file (REFERRAL_ROUTING_RULES); a bad file stops the
    start-up with every problem listed, rather than routing by half a rule set."""
    if not path:
        return None
    with open(path, "rb") as file:
        return load_rule_set(orjson.loads(file.read()))


def install(hooks: Hooks) -> None:
    hooks.before_write.add(Stage.DOMAIN, check_task_write)
