"""What each action records, the deadlines, and the refusals of bad input (422) and bad PUTs."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.resources.referrals.codes import (
    FORWARDING_EXTENSION,
    REFERRAL_STATUS_SYSTEM,
    REJECTION_REASON_SYSTEM,
    Decision,
    Output,
    Priority,
    RejectionReason,
)
from app.resources.referrals.taskjson import OSLO, business_status, care_deadline, output, output_date
from app.resources.referrals.workflow import (
    IllegalTransition,
    InvalidInput,
    accept,
    assess,
    forward,
    give_appointment,
    hold,
    offer_assessment_conversation,
    receive,
    reject,
    start,
    validate_create,
    validate_update,
)
from tests.resources.referrals.builders import (
    CARE_DEADLINE,
    HOSPITAL_A,
    HOSPITAL_B,
    MONDAY,
    STATES,
    Task,
    accepted,
    assessed_needs_conversation,
    assessed_not_entitled,
    assessed_right,
    day,
    forwarded,
    new_task,
    received,
)


def _plain(value: Any) -> None:
    """Only JSON types, and plain str rather than str enums (what orjson and a comparison both expect)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            _plain(v)
    elif isinstance(value, list):
        for v in value:
            _plain(v)
    else:
        assert value is None or type(value) in (str, bool, int, float), repr(value)


@pytest.mark.parametrize("state", list(STATES))
def test_tasks_are_plain_json(state: str) -> None:
    task = STATES[state]()
    _plain(task)
    assert json.loads(json.dumps(task)) == task


def test_receive_records_the_receipt_and_the_legal_assessment_deadline() -> None:
    task = received()
    assert task["status"] == "received"
    assert task["businessStatus"]["coding"][0] == {
        "system": REFERRAL_STATUS_SYSTEM,
        "code": "mottatt",
        "display": "Mottatt",
    }
    assert output(task, Output.RECEIVED) == MONDAY.isoformat()
    assert output(task, Output.FIRST_RECEIVED) == MONDAY.isoformat()
    # Monday 3 March 2025 + 10 working days = Monday 17 March
    assert output(task, Output.ASSESSMENT_DEADLINE) == "2025-03-17"
    assert task["executionPeriod"] == {"start": MONDAY.isoformat()}
    assert task["note"][0]["time"] == MONDAY.isoformat()


def test_assessment_deadline_skips_easter() -> None:
    task = receive(new_task(), at=datetime(2025, 4, 10, 14, 0, tzinfo=OSLO))
    # 11, 14, 15, 16, (17-21 Easter), 22, 23, 24, 25, 28, 29 April
    assert output(task, Output.ASSESSMENT_DEADLINE) == "2025-04-29"


def test_receipt_late_in_the_evening_utc_counts_on_the_oslo_date() -> None:
    # 23:30 UTC on Sunday 2 March is 00:30 on Monday 3 March in Oslo
    task = receive(new_task(), at=datetime(2025, 3, 2, 23, 30, tzinfo=UTC))
    assert output(task, Output.ASSESSMENT_DEADLINE) == "2025-03-17"


def test_receive_needs_an_owner_and_a_time_after_authoring() -> None:
    task = new_task()
    del task["owner"]
    with pytest.raises(InvalidInput, match=r"Task\.owner") as caught:
        receive(task, at=MONDAY)
    assert caught.value.status == 422
    assert receive(task, at=MONDAY, owner=HOSPITAL_A)["owner"] == HOSPITAL_A
    with pytest.raises(InvalidInput, match="authored"):
        receive(new_task(), at=datetime(2025, 2, 1, tzinfo=OSLO))
    with pytest.raises(InvalidInput, match="timezone"):
        receive(new_task(), at=datetime(2025, 3, 3, 9))


def test_assess_right_sets_deadline_priority_and_outputs() -> None:
    task = assessed_right()
    assert business_status(task) == "rett-til-nodvendig-helsehjelp"
    assert task["restriction"] == {"period": {"end": CARE_DEADLINE.isoformat()}}
    assert care_deadline(task) == CARE_DEADLINE
    assert task["priority"] == "routine"
    assert output(task, Output.PRIORITY)["coding"][0]["code"] == "ordinaer"
    assert output(task, Output.DECISION)["coding"][0]["code"] == "rett"
    assert output(task, Output.ASSESSED_IN_TIME) is True
    assert output(task, Output.ASSESSED_BY) == {"reference": "Practitioner/dr-1"}
    assert output_date(task, Output.ASSESSED) == date(2025, 3, 5)
    assert output_date(task, Output.CARE_DEADLINE) == CARE_DEADLINE


def test_late_assessment_is_recorded_not_refused() -> None:
    task = assess(received(), decision=Decision.NOT_ENTITLED, at=day(15))  # 18 March, deadline 17 March
    assert output(task, Output.ASSESSED_IN_TIME) is False


def test_reassessment_from_right_to_not_entitled_removes_the_deadline() -> None:
    task = assess(assessed_right(), decision=Decision.NOT_ENTITLED, at=day(3))
    assert "restriction" not in task
    assert output(task, Output.CARE_DEADLINE) is None
    assert business_status(task) == "ikke-rett"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decision": "maybe"}, "maybe"),
        ({"decision": Decision.RIGHT, "priority": Priority.HIGH}, "deadline"),
        ({"decision": Decision.RIGHT, "care_deadline": date(2025, 6, 1)}, "priority"),
        ({"decision": Decision.RIGHT, "priority": "p9", "care_deadline": date(2025, 6, 1)}, "p9"),
        ({"decision": Decision.NOT_ENTITLED, "care_deadline": date(2025, 6, 1)}, "only a right"),
        (
            {"decision": Decision.RIGHT, "priority": Priority.HIGH, "care_deadline": date(2025, 3, 4)},
            "before",
        ),
    ],
)
def test_assess_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        assess(received(), at=day(2), **kwargs)


def test_deadline_must_be_after_the_received_date() -> None:
    with pytest.raises(InvalidInput, match="after the date the referral was received"):
        assess(
            received(),
            decision=Decision.RIGHT,
            priority=Priority.URGENT,
            care_deadline=MONDAY.date(),
            at=MONDAY,
        )
    with pytest.raises(InvalidInput, match="before the receipt"):
        assess(received(), decision=Decision.NOT_ENTITLED, at=datetime(2025, 3, 2, 9, tzinfo=OSLO))


def test_forward_keeps_who_forwarded_to_whom_and_when() -> None:
    task = forwarded()
    assert task["status"] == "requested"
    assert task["owner"] == HOSPITAL_B
    assert business_status(task) == "videresendt"
    [record] = [e for e in task["extension"] if e["url"] == FORWARDING_EXTENSION]
    parts = {p["url"]: p for p in record["extension"]}
    assert parts["from"]["valueReference"] == HOSPITAL_A
    assert parts["to"]["valueReference"] == HOSPITAL_B
    assert parts["time"]["valueDateTime"] == day(1).isoformat()
    assert output(task, Output.RECEIVED) is None  # the new owner has not received it
    # the first receipt and the assessment deadline stay with the referral
    again = receive(task, at=day(2))
    assert output(again, Output.FIRST_RECEIVED) == MONDAY.isoformat()
    assert output(again, Output.RECEIVED) == day(2).isoformat()
    assert output(again, Output.ASSESSMENT_DEADLINE) == "2025-03-17"
    twice = forward(again, to=HOSPITAL_A, at=day(3), by={"reference": "Practitioner/dr-2"})
    assert len([e for e in twice["extension"] if e["url"] == FORWARDING_EXTENSION]) == 2


def test_forward_to_the_current_owner_or_nowhere_is_refused() -> None:
    with pytest.raises(InvalidInput, match="current owner"):
        forward(received(), to=HOSPITAL_A, at=day(1))
    with pytest.raises(InvalidInput, match="Reference"):
        forward(received(), to={"display": "no reference"}, at=day(1))


def test_assessment_conversation_produces_an_appointment_proposal() -> None:
    task, appointment = offer_assessment_conversation(
        assessed_needs_conversation(),
        at=day(3),
        earliest=date(2025, 3, 10),
        latest=date(2025, 3, 14),
        actor={"reference": "Practitioner/psych-1"},
    )
    assert business_status(task) == "vurderingssamtale-tilbudt"
    assert output(task, Output.CONVERSATION) == {"start": "2025-03-10", "end": "2025-03-14"}
    assert appointment["resourceType"] == "Appointment"
    assert appointment["status"] == "proposed"
    assert appointment["basedOn"] == [{"reference": "ServiceRequest/sr-1"}]
    assert appointment["requestedPeriod"] == [{"start": "2025-03-10", "end": "2025-03-14"}]
    actors = [p["actor"]["reference"] for p in appointment["participant"]]
    assert actors == ["Patient/p-1", "Practitioner/psych-1"]
    assert "id" not in appointment


@pytest.mark.parametrize(
    ("earliest", "latest", "message"),
    [
        (date(2025, 3, 14), date(2025, 3, 10), "before 'earliest'"),
        (date(2025, 3, 1), date(2025, 3, 10), "past"),
    ],
)
def test_assessment_conversation_window_is_checked(earliest: date, latest: date, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        offer_assessment_conversation(received(), at=day(3), earliest=earliest, latest=latest)


def test_accept_needs_a_right() -> None:
    for task in (received(), assessed_not_entitled(), assessed_needs_conversation()):
        with pytest.raises(IllegalTransition, match="right to necessary care"):
            accept(task, at=day(3))


def test_reject_needs_an_assessment_and_a_known_reason() -> None:
    with pytest.raises(IllegalTransition, match="assessed as not entitled"):
        reject(received(), reason=RejectionReason.NO_NEED, at=day(1))
    with pytest.raises(InvalidInput, match="unknown reason"):
        reject(assessed_not_entitled(), reason="because", at=day(3))
    duplicate = reject(received(), reason=RejectionReason.DUPLICATE, at=day(1))
    assert duplicate["status"] == "rejected"
    done = reject(assessed_not_entitled(), reason=RejectionReason.MUNICIPAL_CARE, at=day(3), text="Fastlege")
    assert done["statusReason"]["coding"][0]["system"] == REJECTION_REASON_SYSTEM
    assert done["statusReason"]["coding"][0]["code"] == "kommunal-helsetjeneste"
    assert done["executionPeriod"]["end"] == day(3).isoformat()


def test_children_and_young_people_are_offered_a_conversation_before_rejection() -> None:
    with pytest.raises(IllegalTransition, match="assessment conversation"):
        reject(assessed_not_entitled(), reason=RejectionReason.NO_NEED, at=day(3), child_or_youth=True)
    task, _ = offer_assessment_conversation(
        assessed_needs_conversation(), at=day(3), earliest=date(2025, 3, 10), latest=date(2025, 3, 14)
    )
    task = assess(task, decision=Decision.NOT_ENTITLED, at=day(8))
    assert (
        reject(task, reason=RejectionReason.NO_NEED, at=day(8), child_or_youth=True)["status"] == "rejected"
    )


def test_appointment_and_start_record_deadline_breaches() -> None:
    in_time = give_appointment(
        accepted(), appointment={"reference": "Appointment/a"}, start=day(30), at=day(3)
    )
    assert business_status(in_time) == "time-tildelt"
    assert output(in_time, Output.APPOINTMENT) == {"reference": "Appointment/a"}
    assert output(in_time, Output.DEADLINE_BREACH) is False
    late = give_appointment(accepted(), appointment={"reference": "Appointment/b"}, start=day(80), at=day(3))
    assert output(late, Output.DEADLINE_BREACH) is True
    started = start(late, at=day(80))
    assert output(started, Output.CARE_STARTED) == day(80).isoformat()
    assert output(started, Output.DEADLINE_BREACH) is True
    with pytest.raises(InvalidInput, match="before the receipt"):
        give_appointment(accepted(), appointment={"reference": "Appointment/c"}, start=day(-5), at=day(3))


def test_hold_needs_a_reason() -> None:
    with pytest.raises(InvalidInput, match="reason"):
        hold(accepted(), reason="  ", at=day(3))


# -- client PUTs ----------------------------------------------------------------------------------


def test_validate_create() -> None:
    validate_create(new_task())
    with pytest.raises(IllegalTransition):
        validate_create({**new_task(), "status": "accepted"})
    with pytest.raises(InvalidInput, match="intent"):
        validate_create({**new_task(), "intent": "plan"})
    no_focus = new_task()
    del no_focus["focus"]
    with pytest.raises(InvalidInput, match="focus"):
        validate_create(no_focus)


def test_put_that_only_adds_a_note_is_allowed_in_any_state() -> None:
    for builder in STATES.values():
        old = builder()
        new = copy.deepcopy(old)
        new.setdefault("note", []).append({"text": "x"})
        assert validate_update(old, new) is None


@pytest.mark.parametrize("element", ["focus", "for", "intent", "requester", "authoredOn"])
def test_put_cannot_move_the_task_to_another_referral(element: str) -> None:
    old = received()
    new = {**copy.deepcopy(old), element: {"reference": "Other/1"}}
    with pytest.raises(InvalidInput, match=element):
        validate_update(old, new)


def _with_status(task: Task, status: str, code: str | None = None) -> Task:
    new = copy.deepcopy(task)
    new["status"] = status
    if code is not None:
        new["businessStatus"] = {"coding": [{"system": REFERRAL_STATUS_SYSTEM, "code": code}]}
    return new


def test_put_guards_match_the_actions() -> None:
    # received -> received as a right without a deadline
    with pytest.raises(InvalidInput, match="deadline"):
        validate_update(received(), _with_status(received(), "received", "rett-til-nodvendig-helsehjelp"))
    # with a deadline on or before the receipt
    right = _with_status(received(), "received", "rett-til-nodvendig-helsehjelp")
    right["restriction"] = {"period": {"end": "2025-03-03"}}
    with pytest.raises(InvalidInput, match="after the date"):
        validate_update(received(), right)
    right["restriction"] = {"period": {"end": "2025-04-03"}}
    assert validate_update(received(), right) == "assess"
    # accept without a right
    with pytest.raises(IllegalTransition, match="right"):
        validate_update(received(), _with_status(received(), "accepted"))
    # reject after an assessment, but without a reason
    with pytest.raises(InvalidInput, match="reason"):
        validate_update(assessed_not_entitled(), _with_status(assessed_not_entitled(), "rejected"))
    # forward without a new owner
    with pytest.raises(InvalidInput, match="current owner"):
        validate_update(received(), _with_status(received(), "requested", "videresendt"))
    # time tildelt without the Appointment
    with pytest.raises(InvalidInput, match="Appointment"):
        validate_update(accepted(), _with_status(accepted(), "accepted", "time-tildelt"))
    # received -> received with a businessStatus no action sets
    with pytest.raises(IllegalTransition, match="not a legal transition"):
        validate_update(received(), _with_status(received(), "received", "time-tildelt"))
    # requested -> received skipping the step
    with pytest.raises(IllegalTransition):
        validate_update(new_task(), _with_status(new_task(), "received", "rett-til-nodvendig-helsehjelp"))


def test_put_cannot_drop_the_deadline_of_a_right() -> None:
    old = assessed_right()
    new = copy.deepcopy(old)
    del new["restriction"]
    with pytest.raises(InvalidInput, match="deadline"):
        validate_update(old, new)


def test_errors_become_operation_outcomes() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_update(received(), _with_status(received(), "received", "rett-til-nodvendig-helsehjelp"))
    outcome = caught.value.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Task.restriction.period.end"]


def test_put_changes_the_owner_only_by_forwarding() -> None:
    old = accepted()
    with pytest.raises(IllegalTransition, match="forwarding"):
        validate_update(old, {**copy.deepcopy(old), "owner": HOSPITAL_B})
    before_receipt = new_task()
    assert validate_update(before_receipt, {**copy.deepcopy(before_receipt), "owner": HOSPITAL_B}) is None
    assert validate_update(received(), forward(received(), to=HOSPITAL_B, at=day(1))) == "forward"
