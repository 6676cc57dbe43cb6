"""Synthetic referral Tasks in every workflow state, built through the actions themselves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from app.resources.referrals.codes import (
    TASK_CODE_SYSTEM,
    Decision,
    Priority,
    RejectionReason,
    TaskCode,
    codeable,
)
from app.resources.referrals.taskjson import OSLO
from app.resources.referrals.workflow import (
    accept,
    assess,
    cancel,
    complete,
    forward,
    give_appointment,
    hold,
    offer_assessment_conversation,
    receive,
    reject,
    start,
)

Task = dict[str, Any]

MONDAY = datetime(2025, 3, 3, 9, 0, tzinfo=OSLO)  # an ordinary week, far from Easter (20 April 2025)
HOSPITAL_A = {"reference": "Organization/hospital-a", "display": "Sykehuset Aust"}
HOSPITAL_B = {"reference": "Organization/hospital-b", "display": "Sykehuset Vest"}
CARE_DEADLINE = date(2025, 5, 2)
INTERNAL = "INTERN MERKNAD"  # text that must never reach the patient


def day(n: int, hour: int = 9) -> datetime:
    """n calendar days after Monday 3 March 2025, at `hour` Oslo time."""
    return (MONDAY + timedelta(days=n)).replace(hour=hour)


# What makes a Task a referral Task (a lab order's Task may have a ServiceRequest as focus too).
REFERRAL_TASK_CODE = codeable(TASK_CODE_SYSTEM, TaskCode.REFERRAL)


def new_task() -> Task:
    return {
        "resourceType": "Task",
        "id": "task-1",
        "status": "requested",
        "intent": "order",
        "code": REFERRAL_TASK_CODE,
        "focus": {"reference": "ServiceRequest/sr-1"},
        "for": {"reference": "Patient/p-1"},
        "requester": {"reference": "PractitionerRole/gp-1"},
        "owner": dict(HOSPITAL_A),
        "authoredOn": "2025-03-01T10:00:00+01:00",
    }


def received() -> Task:
    return receive(new_task(), at=MONDAY, note=f"{INTERNAL}: mottatt")


def assessed_right() -> Task:
    return assess(
        received(),
        decision=Decision.RIGHT,
        priority=Priority.ROUTINE,
        care_deadline=CARE_DEADLINE,
        at=day(2),
        assessor={"reference": "Practitioner/dr-1"},
        note=f"{INTERNAL}: vurdering",
    )


def assessed_not_entitled() -> Task:
    return assess(received(), decision=Decision.NOT_ENTITLED, at=day(2), note=f"{INTERNAL}: ikke rett")


def assessed_needs_conversation() -> Task:
    return assess(received(), decision=Decision.NEEDS_CONVERSATION, at=day(2))


def conversation_offered() -> Task:
    task, _ = offer_assessment_conversation(
        assessed_needs_conversation(), at=day(3), earliest=date(2025, 3, 10), latest=date(2025, 3, 14)
    )
    return task


def forwarded() -> Task:
    return forward(received(), to=HOSPITAL_B, at=day(1), reason=f"{INTERNAL}: feil mottaker")


def accepted() -> Task:
    return accept(assessed_right(), at=day(2))


def appointment_given() -> Task:
    return give_appointment(
        accepted(), appointment={"reference": "Appointment/a-1"}, start=day(30, hour=10), at=day(3)
    )


def on_hold() -> Task:
    return hold(accepted(), reason=f"{INTERNAL}: pasienten ba om utsettelse", at=day(4))


def in_progress() -> Task:
    return start(appointment_given(), at=day(30, hour=10))


def completed() -> Task:
    return complete(in_progress(), at=day(40))


def rejected() -> Task:
    return reject(
        assessed_not_entitled(), reason=RejectionReason.NO_NEED, at=day(3), text=f"{INTERNAL}: avslag"
    )


def cancelled() -> Task:
    return cancel(received(), at=day(1), reason=f"{INTERNAL}: trukket")


STATES: dict[str, Callable[[], Task]] = {
    "requested": new_task,
    "received": received,
    "assessed-right": assessed_right,
    "assessed-not-entitled": assessed_not_entitled,
    "assessed-needs-conversation": assessed_needs_conversation,
    "conversation-offered": conversation_offered,
    "forwarded": forwarded,
    "accepted": accepted,
    "appointment-given": appointment_given,
    "on-hold": on_hold,
    "in-progress": in_progress,
    "completed": completed,
    "rejected": rejected,
    "cancelled": cancelled,
}
