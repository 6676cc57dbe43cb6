"""Which Pasientlogistikk messages a write on FHIR calls for (pure): what the stay and the notice say, and
the plan against what was sent (Ny, Endring in a live conversation, Kansellering)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.adapters.kith.model import Organisation, OriginalReference
from app.adapters.plo import clock
from app.adapters.plo import outgoing_plan as op
from app.adapters.plo.model import MESSAGE_TYPES, Family, Kind, Logistics, PloMessage, PloVersion

STAY: dict[str, Any] = {
    "resourceType": "Encounter",
    "status": "in-progress",
    "class": {"code": "IMP"},
    "period": {"start": "2024-02-27T14:00:00+01:00"},
}


def _sent(
    logistics: Logistics, msg_id: str, kind: Kind = Kind.NEW, conversation: str | None = None
) -> op.Sent:
    msg = PloMessage(
        version=PloVersion.V1_6,
        family=Family.LOGISTICS,
        kind=kind,
        msg_id=msg_id,
        msg_type=MESSAGE_TYPES[logistics],
        gen_date=datetime(2024, 3, 1, 12, 0),
        sender=Organisation(),
        receiver=Organisation(),
        patient=None,
        conversation=None if conversation is None else OriginalReference(conversation, conversation),
        logistics=logistics,
    )
    return op.Sent({"id": msg_id}, msg, b"")


def test_a_stay_says_its_admission_then_its_discharge_or_the_death() -> None:
    assert op.stay_says(STAY, None) == {
        Logistics.ADMITTED: "admitted",
        Logistics.DISCHARGED: None,
        Logistics.DEATH: None,
    }
    assert op.stay_says({**STAY, "status": "planned"}, None) == {}
    finished = {**STAY, "status": "finished"}
    assert op.stay_says(finished, None)[Logistics.DISCHARGED] == "discharged"
    dead = {**finished, "hospitalization": {"dischargeDisposition": {"text": "Død"}}}
    assert op.died(dead)
    assert (op.stay_says(dead, None)[Logistics.DEATH], op.stay_says(dead, None)[Logistics.DISCHARGED]) == (
        "dead",
        None,
    )
    coded = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "exp"}]
    }
    assert op.died({**finished, "hospitalization": {"dischargeDisposition": coded}})
    assert op.stay_says(STAY, "2024-03-02")[Logistics.DEATH] == "dead"  # died while in hospital
    assert op.stay_says({**STAY, "status": "entered-in-error"}, None) == {}


def test_the_death_time_is_the_patients_else_the_end_of_the_stay() -> None:
    ended = {**STAY, "period": {**STAY["period"], "end": "2024-03-03"}}
    assert (
        op.death_time(ended, {"deceasedDateTime": "2024-03-02T23:50:00+01:00"}) == "2024-03-02T23:50:00+01:00"
    )
    assert op.death_time(ended, {}) == "2024-03-03"


def test_a_notice_says_itself_by_its_date_and_its_withdrawal() -> None:
    task: dict[str, Any] = {
        "status": "requested",
        "input": [{"type": clock.part_type("noticeDate"), "valueDate": "2024-03-01"}],
    }
    assert op.task_says(task) == {Logistics.DISCHARGE_READY: "2024-03-01", Logistics.WITHDRAWN: None}
    withdrawn = {**task, "status": "cancelled"}
    withdrawn["output"] = [{"type": clock.part_type("withdrawn"), "valueDate": "2024-03-02"}]
    assert op.task_says(withdrawn) == {
        Logistics.DISCHARGE_READY: "2024-03-01",
        Logistics.WITHDRAWN: "withdrawn",
    }
    assert op.task_says({**task, "status": "completed"}) == {Logistics.DISCHARGE_READY: "2024-03-01"}
    assert op.task_says({**task, "status": "entered-in-error"}) == {}
    assert op.task_says(None) == {}


def test_conversations_keep_the_latest_of_each_message() -> None:
    sent = [
        _sent(Logistics.DISCHARGE_READY, "n1"),
        _sent(Logistics.DISCHARGE_READY, "m1", Kind.CHANGE, "n1"),
        _sent(Logistics.WITHDRAWN, "a1"),
        _sent(Logistics.WITHDRAWN, "c1", Kind.CANCEL, "a1"),
    ]
    convs = op.conversations(sent)
    notice, withdrawal = convs[Logistics.DISCHARGE_READY], convs[Logistics.WITHDRAWN]
    assert (notice.first.message.msg_id, notice.last.message.msg_id, notice.live) == ("n1", "m1", True)
    assert (withdrawal.first.message.msg_id, withdrawal.live, withdrawal.order) == ("a1", False, 3)
    renewed = op.conversations([*sent, _sent(Logistics.WITHDRAWN, "a2")])
    assert renewed[Logistics.WITHDRAWN].first.message.msg_id == "a2"


def _steps(steps: list[op.Step]) -> list[tuple[Logistics, Kind, str | None]]:
    return [
        (s.logistics, s.kind, s.conversation.first.message.msg_id if s.conversation else None) for s in steps
    ]


def test_the_plan_new_change_cancel() -> None:
    admitted = {Logistics.ADMITTED: "admitted", Logistics.DEATH: None}
    assert _steps(op.plan(admitted, {}, {}, False)) == [(Logistics.ADMITTED, Kind.NEW, None)]
    assert op.plan(admitted, admitted, {}, False) == []  # said before and not sent: not new
    convs = op.conversations([_sent(Logistics.ADMITTED, "i1"), _sent(Logistics.DEATH, "d1")])
    assert _steps(op.plan(admitted, admitted, convs, False)) == [
        (Logistics.DEATH, Kind.CANCEL, "d1"),  # the death taken back
        (Logistics.ADMITTED, Kind.CHANGE, "i1"),  # the hook drops it when it reads the same
    ]
    assert _steps(op.plan({}, admitted, convs, True)) == [
        (Logistics.DEATH, Kind.CANCEL, "d1"),
        (Logistics.ADMITTED, Kind.CANCEL, "i1"),
    ]
    cancelled = op.conversations(
        [_sent(Logistics.ADMITTED, "i1"), _sent(Logistics.ADMITTED, "c", Kind.CANCEL, "i1")]
    )
    assert op.plan({}, admitted, cancelled, True) == []  # nothing live to cancel
    assert _steps(op.plan(admitted, {}, cancelled, False)) == [(Logistics.ADMITTED, Kind.NEW, None)]
    notice = {Logistics.DISCHARGE_READY: "2024-03-02"}
    assert _steps(op.plan(notice, {Logistics.DISCHARGE_READY: "2024-03-01"}, {}, False)) == [
        (Logistics.DISCHARGE_READY, Kind.NEW, None)  # a new date and nothing live: a new notice
    ]


def test_a_write_that_changes_nothing_the_messages_read_is_not_looked_at() -> None:
    assert op.changed(STAY, None, op.STAY_FIELDS)  # created
    assert not op.changed({**STAY, "text": {"status": "generated"}}, STAY, op.STAY_FIELDS)
    assert op.changed({**STAY, "status": "finished"}, STAY, op.STAY_FIELDS)
