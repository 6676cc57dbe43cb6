"""The referral workflow as a state machine over FHIR R4 Task JSON: pure functions, one per action.

Each action takes the current Task (never modified) and returns a new Task dict, or raises
IllegalTransition (409: not allowed in the current state) or InvalidInput (422: the inputs are wrong).
The same transition table and guards check a client's plain `PUT Task/{id}` (validate_update), so the
rules cannot be bypassed by writing the Task directly.

Forwarding keeps the same Task: status goes back to `requested` with the new owner, and the
referral-forwarding extension records who forwarded it, to whom and when. The first receipt
(ansiennitetsdato) is kept, and the assessment deadline is counted from it.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

from app.resources.referrals.codes import (
    DECISION_SYSTEM,
    FHIR_PRIORITY,
    FORWARDING_EXTENSION,
    PRIORITY_SYSTEM,
    REFERRAL_STATUS_SYSTEM,
    REJECTION_REASON_SYSTEM,
    BusinessStatus,
    Decision,
    Output,
    Priority,
    RejectionReason,
    codeable,
)
from app.resources.referrals.taskjson import (
    Reference,
    Task,
    add_note,
    care_deadline,
    drop_output,
    instant,
    is_reference,
    local_date,
    output,
    output_date,
    parse_datetime,
    received_date,
    set_output,
    status,
)
from app.resources.referrals.transitions import (
    TRANSITION,
    TRANSITIONS,
    IllegalTransition,
    InvalidInput,
    Transition,
    allowed_actions,
    check_invariants,
    validate_create,
    validate_update,
)
from app.resources.referrals.waiting_times import assessment_deadline

__all__ = [
    "TRANSITIONS",
    "IllegalTransition",
    "InvalidInput",
    "Transition",
    "accept",
    "allowed_actions",
    "assess",
    "cancel",
    "complete",
    "forward",
    "give_appointment",
    "hold",
    "offer_assessment_conversation",
    "receive",
    "reject",
    "resume",
    "start",
    "validate_create",
    "validate_update",
]


# -- shared checks ---------------------------------------------------------------------------------


def _aware(moment: datetime, name: str = "at") -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{name}: a timezone-aware datetime is required")
    return moment


def _begin(action: str, task: Task, at: datetime) -> Task:
    _aware(at)
    transition = TRANSITION[action]
    current = status(task)
    if current not in transition.sources:
        allowed = ", ".join(sorted(transition.sources))
        raise IllegalTransition(
            f"{action}: not allowed when Task.status is '{current}' (allowed from: {allowed})"
        )
    return copy.deepcopy(task)


def _finish(action: str, old: Task, new: Task, at: datetime, business: BusinessStatus | None = None) -> Task:
    transition = TRANSITION[action]
    new["status"] = str(transition.target)
    if business is not None:
        new["businessStatus"] = codeable(REFERRAL_STATUS_SYSTEM, business)
    new["lastModified"] = instant(at)
    if transition.guard is not None:
        transition.guard(old, new)
    check_invariants(new)
    return new


def _end_execution(task: Task, at: datetime) -> None:
    period = task.setdefault("executionPeriod", {})
    period["end"] = instant(at)


def _maybe_note(task: Task, note: str | None, at: datetime, author: Reference | None) -> None:
    if note:
        add_note(task, note, at, author)


def _require_reference(value: Any, name: str) -> Reference:
    if not is_reference(value):
        raise InvalidInput(f"{name}: a Reference with a reference or an identifier is required")
    return dict(value)


# -- actions ---------------------------------------------------------------------------------------


def receive(
    task: Task,
    *,
    at: datetime,
    owner: Reference | None = None,
    note: str | None = None,
    author: Reference | None = None,
) -> Task:
    """requested → received (mottatt). Records the receipt, the first receipt and the assessment deadline."""
    new = _begin("receive", task, at)
    if owner is not None:
        new["owner"] = _require_reference(owner, "owner")
    authored = parse_datetime(task.get("authoredOn"))
    if authored is not None and at < authored:
        raise InvalidInput("receive: the receipt is before the referral was authored (Task.authoredOn)")
    set_output(new, Output.RECEIVED, "DateTime", instant(at))
    first = output_date(new, Output.FIRST_RECEIVED)
    if first is None:
        set_output(new, Output.FIRST_RECEIVED, "DateTime", instant(at))
        first = local_date(at)
    # pasient- og brukerrettighetsloven § 2-2: assessment within 10 working days of receipt
    set_output(new, Output.ASSESSMENT_DEADLINE, "Date", assessment_deadline(first).isoformat())
    new.setdefault("executionPeriod", {}).setdefault("start", instant(at))
    new.pop("statusReason", None)
    _maybe_note(new, note, at, author)
    return _finish("receive", task, new, at, BusinessStatus.MOTTATT)


_DECISION_STATUS = {
    Decision.RIGHT: BusinessStatus.RETT,
    Decision.NOT_ENTITLED: BusinessStatus.IKKE_RETT,
    Decision.NEEDS_CONVERSATION: BusinessStatus.VURDERT,
}


def assess(
    task: Task,
    *,
    decision: Decision | str,
    at: datetime,
    priority: Priority | str | None = None,
    care_deadline: date | None = None,
    assessor: Reference | None = None,
    note: str | None = None,
) -> Task:
    """received → received with the decision: a right (with priority and a deadline for start of care),
    not entitled, or an assessment conversation needed. May be repeated until the referral is accepted."""
    new = _begin("assess", task, at)
    try:
        chosen = Decision(decision)
        level = Priority(priority) if priority is not None else None
    except ValueError as exc:
        raise InvalidInput(f"assess: {exc}") from None
    received = received_date(task)
    if received is not None and local_date(at) < received:
        raise InvalidInput("assess: the assessment is dated before the receipt")
    if chosen is Decision.RIGHT:
        if care_deadline is None or level is None:
            raise InvalidInput(
                "assess: a right to necessary care needs a priority and a deadline for start of care"
            )
        if care_deadline < local_date(at):
            raise InvalidInput("assess: the deadline for start of care is before the assessment")
        new["restriction"] = {**new.get("restriction", {}), "period": {"end": care_deadline.isoformat()}}
        set_output(new, Output.CARE_DEADLINE, "Date", care_deadline.isoformat())
    else:
        if care_deadline is not None:
            raise InvalidInput("assess: only a right to necessary care has a deadline for start of care")
        new.pop("restriction", None)
        drop_output(new, Output.CARE_DEADLINE)
    if level is not None:
        new["priority"] = FHIR_PRIORITY[level]
        set_output(new, Output.PRIORITY, "CodeableConcept", codeable(PRIORITY_SYSTEM, level))
    set_output(new, Output.ASSESSED, "DateTime", instant(at))
    set_output(new, Output.DECISION, "CodeableConcept", codeable(DECISION_SYSTEM, chosen))
    deadline = output_date(task, Output.ASSESSMENT_DEADLINE)
    if deadline is not None:
        set_output(new, Output.ASSESSED_IN_TIME, "Boolean", local_date(at) <= deadline)
    if assessor is not None:
        set_output(new, Output.ASSESSED_BY, "Reference", _require_reference(assessor, "assessor"))
    _maybe_note(new, note, at, assessor)
    return _finish("assess", task, new, at, _DECISION_STATUS[chosen])


def forward(
    task: Task,
    *,
    to: Reference,
    at: datetime,
    by: Reference | None = None,
    reason: str | None = None,
    routing_rule: str | None = None,
) -> Task:
    """received → requested (videresendt) with the new owner; the forwarding is recorded in an extension."""
    new = _begin("forward", task, at)
    target = _require_reference(to, "to")
    record: list[dict[str, Any]] = []
    if is_reference(task.get("owner")):
        record.append({"url": "from", "valueReference": task["owner"]})
    record += [{"url": "to", "valueReference": target}, {"url": "time", "valueDateTime": instant(at)}]
    if by is not None:
        record.append({"url": "by", "valueReference": _require_reference(by, "by")})
    if reason:
        record.append({"url": "reason", "valueString": reason})
    new.setdefault("extension", []).append({"url": FORWARDING_EXTENSION, "extension": record})
    new["owner"] = target
    new["statusReason"] = codeable(REFERRAL_STATUS_SYSTEM, BusinessStatus.VIDERESENDT, reason)
    drop_output(new, Output.RECEIVED)  # the new owner has not received it yet
    if routing_rule:
        set_output(new, Output.ROUTING_RULE, "String", routing_rule)
    return _finish("forward", task, new, at, BusinessStatus.VIDERESENDT)


def offer_assessment_conversation(
    task: Task,
    *,
    at: datetime,
    earliest: date,
    latest: date,
    actor: Reference | None = None,
    note: str | None = None,
) -> tuple[Task, dict[str, Any]]:
    """received → received (vurderingssamtale tilbudt). Returns the new Task and a proposed Appointment
    (no id) for the caller to create; the Appointment is basedOn the referral (Task.focus)."""
    new = _begin("offer_assessment_conversation", task, at)
    if latest < earliest:
        raise InvalidInput("offer_assessment_conversation: 'latest' is before 'earliest'")
    if earliest < local_date(at):
        raise InvalidInput("offer_assessment_conversation: the window starts in the past")
    patient = task.get("for")
    if not is_reference(patient):
        raise InvalidInput("offer_assessment_conversation: the Task has no patient (Task.for)", ("Task.for",))
    window = {"start": earliest.isoformat(), "end": latest.isoformat()}
    set_output(new, Output.CONVERSATION, "Period", window)
    _maybe_note(new, note, at, actor)
    participants: list[dict[str, Any]] = [
        {"actor": patient, "required": "required", "status": "needs-action"}
    ]
    if actor is not None:
        participants.append(
            {"actor": _require_reference(actor, "actor"), "required": "required", "status": "accepted"}
        )
    appointment: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "proposed",
        "description": "Vurderingssamtale",
        "created": local_date(at).isoformat(),
        "requestedPeriod": [window],
        "participant": participants,
    }
    if is_reference(task.get("focus")):
        appointment["basedOn"] = [task["focus"]]
    return _finish(
        "offer_assessment_conversation", task, new, at, BusinessStatus.VURDERINGSSAMTALE_TILBUDT
    ), appointment


def accept(task: Task, *, at: datetime, note: str | None = None, author: Reference | None = None) -> Task:
    """received (rett til nødvendig helsehjelp) → accepted."""
    new = _begin("accept", task, at)
    _maybe_note(new, note, at, author)
    return _finish("accept", task, new, at)


def reject(
    task: Task,
    *,
    reason: RejectionReason | str,
    at: datetime,
    text: str | None = None,
    child_or_youth: bool = False,
    author: Reference | None = None,
) -> Task:
    """received (ikke rett) → rejected with a coded reason. `child_or_youth`: the caller has found the
    patient in the group that is offered an assessment conversation before a rejection."""
    new = _begin("reject", task, at)
    try:
        code = RejectionReason(reason)
    except ValueError:
        raise InvalidInput(f"reject: unknown reason {reason!r}", ("Task.statusReason",)) from None
    if child_or_youth and code is not RejectionReason.DUPLICATE and output(task, Output.CONVERSATION) is None:
        raise IllegalTransition(
            "reject: children and young people are offered an assessment conversation first"
        )
    new["statusReason"] = codeable(REJECTION_REASON_SYSTEM, code, text)
    _end_execution(new, at)
    _maybe_note(new, text, at, author)
    return _finish("reject", task, new, at)


def give_appointment(task: Task, *, appointment: Reference, start: datetime, at: datetime) -> Task:
    """accepted → accepted (time tildelt). Records the Appointment and whether it breaches the deadline."""
    new = _begin("give_appointment", task, at)
    _aware(start, "start")
    received = received_date(task)
    if received is not None and local_date(start) < received:
        raise InvalidInput("give_appointment: the appointment is before the receipt")
    set_output(new, Output.APPOINTMENT, "Reference", _require_reference(appointment, "appointment"))
    deadline = care_deadline(task)
    if deadline is not None:
        set_output(new, Output.DEADLINE_BREACH, "Boolean", local_date(start) > deadline)
    return _finish("give_appointment", task, new, at, BusinessStatus.TIME_TILDELT)


def hold(task: Task, *, reason: str, at: datetime) -> Task:
    """accepted → on-hold, e.g. a postponement the patient asked for (pasientforårsaket utsettelse)."""
    new = _begin("hold", task, at)
    if not reason or not reason.strip():
        raise InvalidInput("hold: a reason is required", ("Task.statusReason",))
    new["statusReason"] = {"text": reason}
    return _finish("hold", task, new, at)


def resume(task: Task, *, at: datetime) -> Task:
    """on-hold → accepted."""
    new = _begin("resume", task, at)
    new.pop("statusReason", None)
    return _finish("resume", task, new, at)


def start(task: Task, *, at: datetime) -> Task:
    """accepted → in-progress: care has started (the moment that meets the deadline)."""
    new = _begin("start", task, at)
    set_output(new, Output.CARE_STARTED, "DateTime", instant(at))
    deadline = care_deadline(task)
    if deadline is not None:
        set_output(new, Output.DEADLINE_BREACH, "Boolean", local_date(at) > deadline)
    return _finish("start", task, new, at)


def complete(task: Task, *, at: datetime, note: str | None = None, author: Reference | None = None) -> Task:
    """in-progress → completed."""
    new = _begin("complete", task, at)
    _end_execution(new, at)
    _maybe_note(new, note, at, author)
    return _finish("complete", task, new, at)


def cancel(task: Task, *, at: datetime, reason: str | None = None, by: Reference | None = None) -> Task:
    """Withdrawn by the sender before care has started."""
    new = _begin("cancel", task, at)
    new["statusReason"] = {"text": reason or "Trukket av henviser"}
    _end_execution(new, at)
    _maybe_note(new, reason, at, by)
    return _finish("cancel", task, new, at)
