"""The basic programme (programme.json, data) and the pure functions on it: the programme as an R4
PlanDefinition, the woman's CarePlan with each consultation's window as dates from her due date, and which
consultations are due, overdue and next.

A CarePlan's programme activities carry `detail.code` in CONSULTATION_SYSTEM (the programme's id); every
other activity is extra follow-up (ekstra oppfølging) someone added, and rebuilding the plan keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from app.resources.pregnancy_card.codes import (
    CARD_SYSTEM,
    CODES,
    CONSULTATION_SYSTEM,
    EPISODE_EXTENSION,
    EPISODE_TYPE_SNOMED,
    PERFORMERS,
    PROGRAMME_URL,
    UCUM,
    key_of,
)
from app.resources.pregnancy_card.dates import TERM_DAYS, GestationalAge, date_at

PROGRAMME_FILE = Path(__file__).with_name("programme.json")
PLAN_DEFINITION_ID = PROGRAMME_URL.rsplit("/", 1)[1]
SOURCES = (
    (
        "Helsedirektoratet: Nasjonal faglig retningslinje for svangerskapsomsorgen, basisprogrammet",
        "https://www.helsedirektoratet.no/retningslinjer/svangerskapsomsorgen/konsultasjoner-i-svangerskapsomsorgen/"
        "gravide-med-et-normalt-svangerskap-bor-fa-tilbud-om-et-basisprogram",
    ),
    (
        "Helsedirektoratet: Svangerskap passert termin",
        "https://www.helsedirektoratet.no/retningslinjer/svangerskapsomsorgen/svangerskap-passert-termin",
    ),
)
# Activity statuses that take a consultation out of "due" and "overdue": held, or not to be held.
_CLOSED = frozenset({"completed", "cancelled", "stopped", "entered-in-error"})


@dataclass(frozen=True)
class Consultation:
    """One consultation of the programme (one entry of programme.json)."""

    id: str
    title: str
    start: GestationalAge
    end: GestationalAge  # included
    kind: str  # CarePlan.activity.detail.kind: Appointment, or ServiceRequest for the ultrasounds
    performers: tuple[str, ...]
    description: str
    content: tuple[str, ...]  # keys of codes.CODES recorded for every woman
    on_indication: tuple[str, ...]  # keys offered only to some (RhD-negative, 35+ at term, ...)
    only_past_due_date: bool = False  # the overdue check: applies once the due date has passed

    def window(self, due: date) -> tuple[date, date]:
        return date_at(due, self.start), date_at(due, self.end)


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(PROGRAMME_FILE.read_bytes())
    return data


@cache
def programme() -> tuple[Consultation, ...]:
    """The consultations in order, checked: known codes and performers, a window each."""
    data = _data()
    consultations = tuple(
        Consultation(
            id=item["id"],
            title=item["title"],
            start=GestationalAge.parse(item["start"]),
            end=GestationalAge.parse(item["end"]),
            kind=item["kind"],
            performers=tuple(item["performers"]),
            description=item["description"],
            content=tuple(item["content"]),
            on_indication=tuple(item["onIndication"]),
            only_past_due_date=bool(item.get("onlyPastDueDate", False)),
        )
        for item in data["consultations"]
    )
    for consultation in consultations:
        unknown = {*consultation.content, *consultation.on_indication} - CODES.keys()
        unknown |= set(consultation.performers) - PERFORMERS.keys()
        if unknown or consultation.start > consultation.end:
            raise ValueError(
                f"programme.json: {consultation.id}: unknown {sorted(unknown)} or an empty window"
            )
    return consultations


def by_id() -> dict[str, Consultation]:
    return {consultation.id: consultation for consultation in programme()}


def _weeks(age: GestationalAge) -> dict[str, Any]:
    # Whole weeks stay integers; a window's last day (e.g. 13+6) is weeks to two decimals (13.86), which
    # round(value * 7) turns back into the exact day. The CarePlan holds the exact dates.
    value: float = age.weeks if age.day == 0 else round(age.days / 7, 2)
    return {"value": value, "unit": "uker", "system": UCUM, "code": "wk"}


def _consultation_code(consultation: Consultation) -> dict[str, Any]:
    coding = {"system": CONSULTATION_SYSTEM, "code": consultation.id, "display": consultation.title}
    return {"coding": [coding], "text": consultation.title}


def _past_due_condition() -> dict[str, Any]:
    return {
        "kind": "applicability",
        "expression": {
            "description": "Bare når termin er passert",
            "language": "text/fhirpath",
            "expression": "today() > %dueDate",
        },
    }


def _action(consultation: Consultation) -> dict[str, Any]:
    action: dict[str, Any] = {
        "id": consultation.id,
        "title": consultation.title,
        "description": consultation.description,
        "textEquivalent": f"{consultation.start}–{consultation.end}",
        "code": [_consultation_code(consultation)],
        "timingRange": {"low": _weeks(consultation.start), "high": _weeks(consultation.end)},
        "participant": [
            {
                "type": "practitioner",
                "role": {"coding": [{"system": CARD_SYSTEM, "code": code, "display": PERFORMERS[code]}]},
            }
            for code in consultation.performers
        ],
        # What is recorded at the consultation: the card's rows. "could" = on indication only.
        "action": [
            {"title": CODES[key].display_no, "code": [CODES[key].concept()], "requiredBehavior": behaviour}
            for keys, behaviour in ((consultation.content, "must"), (consultation.on_indication, "could"))
            for key in keys
        ],
    }
    if consultation.only_past_due_date:
        action["condition"] = [_past_due_condition()]
    return action


def plan_definition() -> dict[str, Any]:
    """The programme as an R4 PlanDefinition: one action per consultation, its window in weeks."""
    return {
        "resourceType": "PlanDefinition",
        "id": PLAN_DEFINITION_ID,
        "url": PROGRAMME_URL,
        "name": "BasisprogramSvangerskap",
        "title": _data()["title"],
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                    "code": "clinical-protocol",
                    "display": "Clinical Protocol",
                }
            ]
        },
        "status": "active",
        "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "NO"}]}],
        "description": "Helsedirektoratets basisprogram: ni konsultasjoner inkludert fosterdiagnostikk, "
        "og overtidskontroll når termin er passert.",
        "relatedArtifact": [{"type": "citation", "display": title, "url": url} for title, url in SOURCES],
        "action": [_action(consultation) for consultation in programme()],
    }


def programme_id(activity: Mapping[str, Any]) -> str | None:
    """The programme consultation an activity is, or None for extra follow-up."""
    for coding in activity.get("detail", {}).get("code", {}).get("coding", []):
        if coding.get("system") == CONSULTATION_SYSTEM and coding.get("code") in by_id():
            return str(coding["code"])
    return None


def _activity(consultation: Consultation, due: date, status: str) -> dict[str, Any]:
    start, end = consultation.window(due)
    detail: dict[str, Any] = {
        "kind": consultation.kind,
        "instantiatesCanonical": [PROGRAMME_URL],
        "code": _consultation_code(consultation),
        "status": status,
        "scheduledPeriod": {"start": start.isoformat(), "end": end.isoformat()},
        "description": f"{consultation.start}–{consultation.end}: {consultation.description}",
    }
    return {"detail": detail}


def care_plan(
    patient_id: str, episode_id: str, due_date: date, existing: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The woman's CarePlan for the programme from her due date in force.

    Rebuilding from `existing` (the due date moved, or the plan is written again) keeps: its other fields
    (id, author, notes, ...) and its status, each programme activity's status (a held consultation stays
    completed), and every extra activity as it is, after the programme's."""
    plan: dict[str, Any] = dict(existing or {})
    previous = {programme_id(activity): activity for activity in plan.get("activity", [])}
    extras = [activity for activity in plan.get("activity", []) if programme_id(activity) is None]
    activities = []
    for consultation in programme():
        status = previous.get(consultation.id, {}).get("detail", {}).get("status", "not-started")
        activities.append(_activity(consultation, due_date, status))
    others = [ext for ext in plan.get("extension", []) if ext.get("url") != EPISODE_EXTENSION]
    plan.update(
        {
            "resourceType": "CarePlan",
            "extension": [
                {"url": EPISODE_EXTENSION, "valueReference": {"reference": f"EpisodeOfCare/{episode_id}"}},
                *others,
            ],
            "instantiatesCanonical": [PROGRAMME_URL],
            "status": plan.get("status", "active"),
            "intent": "plan",
            "category": [{"coding": [EPISODE_TYPE_SNOMED], "text": "Svangerskapsomsorg"}],
            "title": "Svangerskapsomsorg – basisprogram",
            "description": f"Termin {due_date.isoformat()}",
            "subject": {"reference": f"Patient/{patient_id}"},
            "activity": activities + extras,
        }
    )
    return plan


@dataclass(frozen=True)
class Scheduled:
    """One activity of a CarePlan with a window: a programme consultation or extra follow-up."""

    key: str  # the programme id, else the activity's first code, else "activity-<index>"
    title: str
    start: date
    end: date  # included
    status: str  # detail.status, "completed" also when `done` marks it
    extra: bool  # not from the programme
    kind: str | None = None


@dataclass(frozen=True)
class NextResult:
    due: tuple[Scheduled, ...]  # window open today, not held
    overdue: tuple[Scheduled, ...]  # window ended, not held
    upcoming: Scheduled | None  # the first not held whose window has not opened


def due_date_of(care_plan: Mapping[str, Any]) -> date | None:
    """The due date a programme CarePlan was built from, read back from any programme activity's window."""
    for activity in care_plan.get("activity", []):
        consultation = by_id().get(programme_id(activity) or "")
        period = activity.get("detail", {}).get("scheduledPeriod", {})
        if consultation is not None and "start" in period:
            return date.fromisoformat(period["start"][:10]) + timedelta(
                days=TERM_DAYS - consultation.start.days
            )
    return None


def scheduled(care_plan: Mapping[str, Any]) -> list[Scheduled]:
    """The CarePlan's activities that have a window, in window order (extra follow-up without one is left
    out: it has no time to be due at)."""
    found = []
    for index, activity in enumerate(care_plan.get("activity", [])):
        detail = activity.get("detail", {})
        period = detail.get("scheduledPeriod", {})
        if "start" not in period:
            continue
        start = date.fromisoformat(period["start"][:10])
        end = date.fromisoformat(period.get("end", period["start"])[:10])
        pid = programme_id(activity)
        codings = detail.get("code", {}).get("coding", [])
        key = pid or (str(codings[0]["code"]) if codings and "code" in codings[0] else f"activity-{index}")
        title = detail.get("code", {}).get("text") or detail.get("description") or key
        status = str(detail.get("status", "not-started"))
        found.append(Scheduled(key, str(title), start, end, status, pid is None, detail.get("kind")))
    return sorted(found, key=lambda item: (item.start, item.end))


def held_by_orders(requests: Iterable[Mapping[str, Any]]) -> list[str]:
    """The programme's ordered consultations (the ultrasounds) that completed ServiceRequests say were
    held: a request whose code is the consultation's order (its content recorded as a ServiceRequest, such
    as early_ultrasound for tidlig-ultralyd). For `next_consultations`' `done`."""
    orders = {
        key: consultation.id
        for consultation in programme()
        if consultation.kind == "ServiceRequest"
        for key in consultation.content
        if CODES[key].resource == "ServiceRequest"
    }
    held = []
    for request in requests:
        if request.get("status") != "completed":
            continue
        for coding in (request.get("code") or {}).get("coding") or []:
            key = key_of(coding)
            if key in orders:
                held.append(orders[key])
    return held


def _mark_done(items: list[Scheduled], done: Iterable[str | date]) -> list[Scheduled]:
    """`done` names held consultations: a str is a key (programme id or an extra's code); a date is a
    consultation held that day (an Encounter of the episode), which marks the earliest open Appointment
    whose window holds the day. Ultrasounds (ServiceRequest) are marked by key or status only: a GP
    visit in week 12 is not the early ultrasound."""
    keys = {item for item in done if isinstance(item, str)}
    days = sorted(item for item in done if isinstance(item, date))
    marked = [replace(item, status="completed") if item.key in keys else item for item in items]
    for day in days:
        for index, item in enumerate(marked):
            if item.status not in _CLOSED and item.kind != "ServiceRequest" and item.start <= day <= item.end:
                marked[index] = replace(item, status="completed")
                break
    return marked


def next_consultations(
    care_plan: Mapping[str, Any], today: date, done: Iterable[str | date] = ()
) -> NextResult:
    """What is due today, what is overdue and which is next, for the card and `$next`.

    Held: `detail.status` completed (or cancelled/stopped: not to be held), or marked by `done`. The overdue
    check counts only once today is past the due date: before that it is neither upcoming nor due."""
    due_date = due_date_of(care_plan)
    past_due = due_date is not None and today > due_date
    items = []
    for item in _mark_done(scheduled(care_plan), done):
        consultation = None if item.extra else by_id()[item.key]
        if consultation is not None and consultation.only_past_due_date and not past_due:
            continue
        items.append(item)
    open_items = [item for item in items if item.status not in _CLOSED]
    return NextResult(
        due=tuple(item for item in open_items if item.start <= today <= item.end),
        overdue=tuple(item for item in open_items if item.end < today),
        upcoming=next((item for item in open_items if item.start > today), None),
    )
