"""The basic programme as data, its PlanDefinition, the woman's CarePlan from her due date, and what is due,
overdue and next; the PlanDefinition and CarePlan are valid R4 (fhir.resources R4B models)."""

from __future__ import annotations

import copy
import itertools
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.plandefinition import PlanDefinition

from app.resources.pregnancy_card.codes import (
    CONSULTATION_SYSTEM,
    EPISODE_EXTENSION,
    LOINC,
    PROGRAMME_URL,
    ClinicalCode,
    clinical,
)
from app.resources.pregnancy_card.dates import GestationalAge, gestational_age
from app.resources.pregnancy_card.programme import (
    by_id,
    care_plan,
    due_date_of,
    held_by_orders,
    next_consultations,
    plan_definition,
    programme,
    programme_id,
    scheduled,
)

DUE = date(2027, 3, 10)  # LMP 2026-06-03
NINE = [
    "uke-6-12",
    "tidlig-ultralyd",
    "ultralyd-17-19",
    "uke-24",
    "uke-28",
    "uke-32",
    "uke-36",
    "uke-38",
    "uke-40",
]
EXTRA: dict[str, Any] = {
    "detail": {
        "kind": "Appointment",
        "code": {
            "coding": [{"system": "urn:example:local", "code": "ekstra-bt"}],
            "text": "Ekstra blodtrykkskontroll",
        },
        "status": "scheduled",
        "scheduledPeriod": {"start": "2026-12-01", "end": "2026-12-03"},
    }
}


def keys(items: tuple[Any, ...]) -> list[str]:
    return [item.key for item in items]


def test_the_programme_is_nine_consultations_and_the_overdue_check() -> None:
    assert [c.id for c in programme()] == [*NINE, "overtid"]
    assert [c.id for c in programme() if c.only_past_due_date] == ["overtid"]
    assert by_id()["tidlig-ultralyd"].start == GestationalAge.parse("11+0")
    assert by_id()["tidlig-ultralyd"].end == GestationalAge.parse("13+6")
    assert by_id()["ultralyd-17-19"].performers == ("sykehus",)
    assert "nipt" in by_id()["tidlig-ultralyd"].on_indication
    assert {"hb", "fetal_presentation"} <= set(by_id()["uke-36"].content)
    assert "hb" in by_id()["uke-28"].content
    assert "antibody_screen" in by_id()["uke-24"].on_indication  # RhD-negative only
    assert all("sf_height" in by_id()[week].content for week in NINE[3:])


def test_the_appointments_windows_are_in_order_and_never_overlap() -> None:
    appointments = [c for c in programme() if c.kind == "Appointment"]
    for earlier, later in itertools.pairwise(appointments):
        assert earlier.end < later.start, (earlier.id, later.id)


def test_the_plan_definition() -> None:
    resource = plan_definition()
    PlanDefinition.model_validate(resource)
    assert resource["url"] == PROGRAMME_URL
    actions = resource["action"]
    assert [action["id"] for action in actions] == [*NINE, "overtid"]
    assert [action["id"] for action in actions if "condition" not in action] == NINE
    week_24 = actions[3]
    assert week_24["code"][0]["coding"][0] == {
        "system": CONSULTATION_SYSTEM,
        "code": "uke-24",
        "display": "Konsultasjon uke 24",
    }
    assert week_24["timingRange"]["low"]["value"] == 23
    assert week_24["timingRange"]["high"]["value"] == 24.86
    assert round(week_24["timingRange"]["high"]["value"] * 7) == GestationalAge.parse("24+6").days
    rows = {row["code"][0]["coding"][0]["code"]: row["requiredBehavior"] for row in week_24["action"]}
    assert rows["11881-0"] == "must"  # symfyse-fundusmål
    assert rows["890-4"] == "could"  # antibody screen, RhD-negative only
    assert week_24["action"][0]["code"][0]["coding"][0]["system"] == LOINC


def test_the_week_24_window_from_a_known_due_date() -> None:
    start, end = by_id()["uke-24"].window(DUE)
    assert (start, end) == (date(2026, 11, 11), date(2026, 11, 24))
    assert str(gestational_age(DUE, start)) == "23+0"
    assert str(gestational_age(DUE, end)) == "24+6"
    assert by_id()["uke-6-12"].window(DUE) == (date(2026, 7, 15), date(2026, 9, 1))
    assert by_id()["overtid"].window(DUE) == (date(2027, 3, 19), date(2027, 3, 21))  # day 289-291


def test_the_care_plan() -> None:
    plan = care_plan("kari", "svangerskap-1", DUE)
    CarePlan.model_validate(plan)
    assert (plan["status"], plan["intent"], plan["subject"]) == (
        "active",
        "plan",
        {"reference": "Patient/kari"},
    )
    assert plan["instantiatesCanonical"] == [PROGRAMME_URL]
    assert plan["extension"] == [
        {"url": EPISODE_EXTENSION, "valueReference": {"reference": "EpisodeOfCare/svangerskap-1"}}
    ]
    assert plan["category"][0]["coding"][0]["code"] == "424525001"
    assert [programme_id(activity) for activity in plan["activity"]] == [*NINE, "overtid"]
    week_24 = plan["activity"][3]["detail"]
    assert week_24["scheduledPeriod"] == {"start": "2026-11-11", "end": "2026-11-24"}  # dates, not datetimes
    assert week_24["status"] == "not-started"
    assert due_date_of(plan) == DUE


@pytest.mark.parametrize(
    ("today", "done", "due", "overdue", "upcoming"),
    [
        (date(2026, 7, 1), [], [], [], "uke-6-12"),  # before the first window
        (date(2026, 8, 1), [], ["uke-6-12"], [], "tidlig-ultralyd"),
        (date(2026, 8, 25), ["uke-6-12"], ["tidlig-ultralyd"], [], "ultralyd-17-19"),
        (date(2026, 11, 20), ["uke-6-12", "tidlig-ultralyd", "ultralyd-17-19"], ["uke-24"], [], "uke-28"),
        (date(2026, 11, 20), [], ["uke-24"], ["uke-6-12", "tidlig-ultralyd", "ultralyd-17-19"], "uke-28"),
        (date(2026, 11, 25), [*NINE[:3]], [], ["uke-24"], "uke-28"),  # the day after the window
        (date(2026, 11, 24), [*NINE[:3]], ["uke-24"], [], "uke-28"),  # the window's last day
        # an encounter on a day marks the open appointment whose window holds it, never the ultrasound
        (date(2026, 9, 10), [date(2026, 8, 25)], [], ["tidlig-ultralyd"], "ultralyd-17-19"),
        # the overdue check: not upcoming before the due date, upcoming after it
        (date(2027, 3, 5), [*NINE[:8]], ["uke-40"], [], None),
        (date(2027, 3, 10), [*NINE[:8]], ["uke-40"], [], None),  # the due date itself: not past it
        (date(2027, 3, 11), [*NINE[:8]], ["uke-40"], [], "overtid"),
        (date(2027, 3, 17), [*NINE[:8]], [], ["uke-40"], "overtid"),
        (date(2027, 3, 11), NINE, [], [], "overtid"),
        (date(2027, 3, 20), NINE, ["overtid"], [], None),
    ],
)
def test_due_overdue_and_upcoming(
    today: date, done: list[str | date], due: list[str], overdue: list[str], upcoming: str | None
) -> None:
    result = next_consultations(care_plan("kari", "e1", DUE), today, done)
    assert keys(result.due) == due
    assert keys(result.overdue) == overdue
    assert (result.upcoming.key if result.upcoming else None) == upcoming


def test_completed_comes_from_the_activity_status_too() -> None:
    plan = care_plan("kari", "e1", DUE)
    for activity in plan["activity"][:3]:
        activity["detail"]["status"] = "completed"
    plan["activity"][3]["detail"]["status"] = "cancelled"  # she will not come: neither due nor overdue
    assert next_consultations(plan, date(2026, 11, 30)) == next_consultations(
        plan, date(2026, 11, 30), NINE[:4]
    )
    result = next_consultations(plan, date(2026, 11, 30))
    assert (result.due, result.overdue, result.upcoming and result.upcoming.key) == ((), (), "uke-28")


def test_extra_follow_up_is_kept_when_the_due_date_moves() -> None:
    first = care_plan("kari", "e1", DUE)
    first["id"] = "plan-1"
    first["note"] = [{"text": "Følges tett for blodtrykk"}]
    first["activity"][0]["detail"]["status"] = "completed"
    first["activity"].append(copy.deepcopy(EXTRA))
    moved = care_plan("kari", "e1", date(2027, 3, 16), first)  # the ultrasound moved the due date 6 days
    CarePlan.model_validate(moved)
    assert (moved["id"], moved["note"]) == ("plan-1", first["note"])
    assert moved["activity"][-1] == EXTRA
    assert len(moved["activity"]) == 11
    assert moved["activity"][0]["detail"]["status"] == "completed"
    assert moved["activity"][3]["detail"]["scheduledPeriod"] == {"start": "2026-11-17", "end": "2026-11-30"}
    assert [e["url"] for e in moved["extension"]].count(EPISODE_EXTENSION) == 1
    assert due_date_of(moved) == date(2027, 3, 16)
    # the extra follow-up is due in its own window, marked as extra
    result = next_consultations(moved, date(2026, 12, 2), NINE[:4])
    assert [(item.key, item.extra) for item in result.due] == [("ekstra-bt", True)]
    assert result.due[0].title == "Ekstra blodtrykkskontroll"


def test_extra_follow_up_without_a_window_is_not_scheduled() -> None:
    plan = care_plan("kari", "e1", DUE)
    plan["activity"].append({"detail": {"status": "not-started", "description": "Samtale med psykolog"}})
    assert len(scheduled(plan)) == 10
    assert len(care_plan("kari", "e1", DUE, plan)["activity"]) == 11


def test_a_plan_without_programme_activities_has_no_due_date() -> None:
    assert due_date_of({"resourceType": "CarePlan", "activity": [EXTRA]}) is None
    result = next_consultations({"activity": [EXTRA]}, date(2026, 12, 2))
    assert keys(result.due) == ["ekstra-bt"]


def test_a_completed_ultrasound_order_holds_its_consultation() -> None:
    """The ultrasounds are ordered (ServiceRequest): a completed one with the consultation's order code is
    that consultation held; one not completed, or of another code, holds nothing."""
    early, routine = clinical("early_ultrasound"), clinical("routine_ultrasound")

    def order(code: ClinicalCode, status: str) -> dict[str, Any]:
        coding = {"system": code.system, "code": code.code}
        return {"resourceType": "ServiceRequest", "status": status, "code": {"coding": [coding]}}

    nipt = clinical("nipt")
    requests = [order(early, "completed"), order(routine, "active"), order(nipt, "completed")]
    assert held_by_orders(requests) == ["tidlig-ultralyd"]
    plan = care_plan("mari", "p1", date(2027, 4, 7), None)
    today = date(2026, 10, 20)  # 15+6: the early ultrasound's window has ended
    first_visit = date(2026, 8, 20)  # 7+1: the first consultation held
    before = next_consultations(plan, today, [first_visit])
    assert [item.key for item in before.overdue] == ["tidlig-ultralyd"]
    after = next_consultations(plan, today, [first_visit, *held_by_orders(requests)])
    assert after.overdue == ()
