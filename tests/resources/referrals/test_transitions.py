"""Every action from every state: legal moves give the expected status, the rest are 422s (business rules).

The expectations are written out here rather than derived from the module's table, so that a change of
the table shows up as a failing test.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from app.resources.referrals.codes import Decision, Priority, RejectionReason, TaskStatus
from app.resources.referrals.taskjson import business_status
from app.resources.referrals.workflow import (
    IllegalTransition,
    accept,
    allowed_actions,
    assess,
    cancel,
    complete,
    forward,
    give_appointment,
    hold,
    offer_assessment_conversation,
    receive,
    reject,
    resume,
    start,
    validate_update,
)
from tests.resources.referrals.builders import HOSPITAL_B, STATES, Task, day

RECEIVED_FAMILY = (
    "received",
    "assessed-right",
    "assessed-not-entitled",
    "assessed-needs-conversation",
    "conversation-offered",
)

ACTIONS: dict[str, Callable[[Task], Task]] = {
    "receive": lambda t: receive(t, at=day(10), owner={"reference": "Organization/hospital-b"}),
    "assess": lambda t: assess(
        t, decision=Decision.RIGHT, priority=Priority.HIGH, care_deadline=date(2025, 6, 2), at=day(10)
    ),
    "offer_assessment_conversation": lambda t: offer_assessment_conversation(
        t, at=day(10), earliest=date(2025, 3, 17), latest=date(2025, 3, 21)
    )[0],
    "forward": lambda t: forward(t, to={"reference": "Organization/hospital-c"}, at=day(10)),
    "accept": lambda t: accept(t, at=day(10)),
    "reject": lambda t: reject(t, reason=RejectionReason.NO_NEED, at=day(10)),
    "give_appointment": lambda t: give_appointment(
        t, appointment={"reference": "Appointment/a-2"}, start=day(20), at=day(10)
    ),
    "hold": lambda t: hold(t, reason="utsettelse", at=day(10)),
    "resume": lambda t: resume(t, at=day(10)),
    "start": lambda t: start(t, at=day(10)),
    "complete": lambda t: complete(t, at=day(10)),
    "cancel": lambda t: cancel(t, at=day(10)),
}

# action -> (states it is legal from, resulting Task.status)
LEGAL: dict[str, tuple[tuple[str, ...], str]] = {
    "receive": (("requested", "forwarded"), "received"),
    "assess": (RECEIVED_FAMILY, "received"),
    # not over a granted right: the conversation comes before the decision
    "offer_assessment_conversation": (tuple(s for s in RECEIVED_FAMILY if s != "assessed-right"), "received"),
    "forward": (RECEIVED_FAMILY, "requested"),
    "accept": (("assessed-right",), "accepted"),
    "reject": (("assessed-not-entitled",), "rejected"),
    "give_appointment": (("accepted", "appointment-given"), "accepted"),
    "hold": (("accepted", "appointment-given"), "on-hold"),
    "resume": (("on-hold",), "accepted"),
    "start": (("accepted", "appointment-given"), "in-progress"),
    "complete": (("in-progress",), "completed"),
    "cancel": (
        ("requested", "forwarded", *RECEIVED_FAMILY, "accepted", "appointment-given", "on-hold"),
        "cancelled",
    ),
}

CASES = [(action, state) for action in ACTIONS for state in STATES]


def _id(case: tuple[str, str]) -> str:
    return f"{case[0]}-from-{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_every_action_from_every_state(case: tuple[str, str]) -> None:
    action, state = case
    task = STATES[state]()
    before = copy.deepcopy(task)
    sources, target = LEGAL[action]
    if state in sources:
        result = ACTIONS[action](task)
        assert result["status"] == target
        assert result["lastModified"] == day(10).isoformat()
        # the same table accepts the result as a client PUT, and names the action
        assert validate_update(task, result) in {action, None}
    else:
        with pytest.raises(IllegalTransition) as caught:
            ACTIONS[action](task)
        assert caught.value.status == 422
        assert caught.value.outcome()["issue"][0]["code"] == "business-rule"
    assert task == before, "actions never modify their input"


def test_same_status_actions_are_recognised_by_validate_update() -> None:
    received = STATES["received"]()
    assert validate_update(received, ACTIONS["assess"](received)) == "assess"
    assert validate_update(received, ACTIONS["offer_assessment_conversation"](received)) == (
        "offer_assessment_conversation"
    )
    accepted = STATES["accepted"]()
    assert validate_update(accepted, ACTIONS["give_appointment"](accepted)) == "give_appointment"


@pytest.mark.parametrize("state", list(STATES))
def test_allowed_actions_lists_the_source_states(state: str) -> None:
    expected = {a for a, (sources, _) in LEGAL.items() if state in sources}
    # guards (accept needs a right, reject an assessment, a conversation no right) are not part of
    # allowed_actions
    listed = set(allowed_actions(STATES[state]()))
    assert expected <= listed
    assert listed - expected <= {"accept", "reject", "offer_assessment_conversation"}


def _reachable(state: str) -> set[str]:
    return {target for action, (sources, target) in LEGAL.items() if state in sources}


STATUS_CASES = [
    (state, new_status)
    for state in STATES
    for new_status in TaskStatus
    if new_status not in _reachable(state) and new_status != STATES[state]()["status"]
]


@pytest.mark.parametrize("case", STATUS_CASES, ids=[f"{s}-to-{n}" for s, n in STATUS_CASES])
def test_put_with_an_unreachable_status_is_refused(case: tuple[str, str]) -> None:
    state, new_status = case
    old = STATES[state]()
    new: dict[str, Any] = {**copy.deepcopy(old), "status": new_status}
    with pytest.raises(IllegalTransition):
        validate_update(old, new)


def test_a_rejected_referral_cannot_be_completed() -> None:
    old = STATES["rejected"]()
    with pytest.raises(IllegalTransition, match="rejected"):
        validate_update(old, {**old, "status": "completed"})
    with pytest.raises(IllegalTransition):
        complete(old, at=day(10))


def test_cannot_assess_before_receiving() -> None:
    with pytest.raises(IllegalTransition, match=r"assess: not allowed when Task.status is 'requested'"):
        ACTIONS["assess"](STATES["requested"]())


def test_forwarded_referral_is_received_by_the_new_owner() -> None:
    task = receive(STATES["forwarded"](), at=day(2))
    assert task["owner"] == HOSPITAL_B
    assert business_status(task) == "mottatt"
