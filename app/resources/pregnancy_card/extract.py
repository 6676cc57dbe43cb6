"""One finished pregnancy as a de-identified research record (pure): README.md documents the shape.

Reduction by allow-list, never by deny-list: a record is built from the few coded elements named here,
so a name, fødselsnummer, address, free text, id or reference cannot survive by being forgotten.
Every date becomes a gestational age relative to the due date in force; the due date itself only as
year and month; the woman's birth date only as her age in whole years at the due date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from app.resources.no_basis.search import MUNICIPALITY_EXTENSION
from app.resources.pregnancy_card import dates, pseudonym
from app.resources.pregnancy_card.content import is_pregnancy_condition
from app.resources.pregnancy_card.dating import Dating, dating, latest, observation_key

FORMAT = "helsebro-pregnancy-extract/1"
Resource = Mapping[str, Any]
Record = dict[str, Any]


@dataclass
class Pregnancy:
    """What the extract read of one finished pregnancy (extract_gather.py)."""

    patient: Resource
    episode: Resource
    # per resource type: Encounter, Observation, Condition, ServiceRequest, Procedure
    own: Mapping[str, Sequence[Resource]] = field(default_factory=dict)

    def of(self, res_type: str) -> Sequence[Resource]:
        return self.own.get(res_type, ())


def day_of(text: Any) -> date | None:
    """The calendar day a FHIR date or dateTime names (an instant: its day in Norway)."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        if len(text) > 10:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return dates.local_date(instant) if instant.tzinfo else instant.date()
        return date.fromisoformat(text)
    except ValueError:
        return None


def finished_since(episode: Resource, since: date | None) -> bool:
    """A completed pregnancy: status finished and an end; with `since`, ended on or after it."""
    end = day_of(episode.get("period", {}).get("end"))
    return episode.get("status") == "finished" and end is not None and (since is None or end >= since)


def gestation(due: date | None, day: date | None) -> dict[str, Any] | None:
    """A day as gestational age ({"ga": "12+3", "gaDays": 87}); None when undated or outside 0+0..45+0."""
    if due is None or day is None:
        return None
    try:
        age = dates.gestational_age(due, day)
    except ValueError:
        return None
    return {"ga": str(age), "gaDays": age.days}


def codes(concept: Any) -> list[dict[str, str]]:
    """A CodeableConcept (or a list of them) as its codings' system and code only: its text and the
    displays a sender typed may be free text."""
    out = []
    for item in concept if isinstance(concept, list) else [concept]:
        codings = item.get("coding") if isinstance(item, Mapping) else None
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                out.append({"system": str(coding.get("system", "")), "code": coding["code"]})
    return out


def value(element: Resource, due: date | None) -> dict[str, Any] | None:
    """An Observation's (or component's) value: quantities, codes, booleans and integers as they are, a
    dateTime as days from the due date in force; strings and anything else are left out."""
    if isinstance(element.get("valueQuantity"), Mapping):
        q = element["valueQuantity"]
        if isinstance(q.get("value"), int | float):
            found = {"value": q["value"], "unit": q.get("code") or q.get("unit"), "system": q.get("system")}
            return {"quantity": {k: v for k, v in found.items() if v is not None}}
    if "valueCodeableConcept" in element:
        return {"codes": codes(element["valueCodeableConcept"])}
    for name, out in (("valueBoolean", "boolean"), ("valueInteger", "integer")):
        if isinstance(element.get(name), bool | int):
            return {out: element[name]}
    day = day_of(element.get("valueDateTime"))
    if day is not None and due is not None:
        return {"daysFromDue": (day - due).days}
    return None


def observation(o: Resource, due: date | None) -> Record:
    found: Record = {"code": codes(o.get("code")), "status": o.get("status")}
    key = observation_key(o)
    if key is not None:
        found["key"] = key
    found["at"] = gestation(due, day_of(o.get("effectiveDateTime") or o.get("issued")))
    reduced = value(o, due)
    if reduced is not None:
        found["value"] = reduced
    parts = [{"code": codes(c.get("code")), "value": value(c, due)} for c in o.get("component") or []]
    if parts:
        found["components"] = parts
    if o.get("interpretation"):
        found["interpretation"] = codes(o["interpretation"])
    return found


def condition(c: Resource, due: date | None) -> Record:
    return {
        "code": codes(c.get("code")),
        "clinicalStatus": [x["code"] for x in codes(c.get("clinicalStatus"))],
        "verificationStatus": [x["code"] for x in codes(c.get("verificationStatus"))],
        "at": gestation(due, day_of(c.get("onsetDateTime") or c.get("recordedDate"))),
    }


def service_request(s: Resource, due: date | None) -> Record:
    when = s.get("occurrenceDateTime") or s.get("occurrencePeriod", {}).get("start") or s.get("authoredOn")
    return {"code": codes(s.get("code")), "status": s.get("status"), "at": gestation(due, day_of(when))}


def procedure(p: Resource, due: date | None) -> Record:
    when = p.get("performedDateTime") or p.get("performedPeriod", {}).get("start")
    return {
        "code": codes(p.get("code")),
        "status": p.get("status"),
        "outcome": codes(p.get("outcome")),
        "at": gestation(due, day_of(when)),
    }


def _order(records: list[Record]) -> list[Record]:
    """By gestational age (undated last), then code: the same data gives the same lines."""

    def key(r: Record) -> tuple[int, str]:
        at = r.get("at") or {}
        return (at.get("gaDays", 10_000), repr(r.get("code")))

    return sorted(records, key=key)


def consultations(
    encounters: Sequence[Resource], observations: Sequence[Resource], due: date | None
) -> tuple[list[Record], list[Record]]:
    """The consultations, each with the Observations recorded at it, and the Observations at none."""
    at: dict[str, list[Resource]] = {}
    loose: list[Record] = []
    known = {f"Encounter/{e.get('id')}" for e in encounters}
    for o in observations:
        ref = o.get("encounter", {}).get("reference")
        if ref in known:
            at.setdefault(str(ref), []).append(o)
        else:
            loose.append(observation(o, due))
    visits = [
        {
            "class": e.get("class", {}).get("code"),
            "type": codes(e.get("type")),
            "at": gestation(due, day_of(e.get("period", {}).get("start"))),
            "observations": _order([observation(o, due) for o in at.get(f"Encounter/{e.get('id')}", [])]),
        }
        for e in encounters
    ]
    return _order(visits), _order(loose)


def age_in_years(birth: date | None, on: date | None) -> int | None:
    if birth is None or on is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def county(patient: Resource) -> str | None:
    """The fylke (first two digits of the kommunenummer) of her first address that has one: a region
    large enough not to point at her, unlike a small municipality."""
    for address in patient.get("address") or []:
        district = address.get("_district", {}) if isinstance(address, Mapping) else {}
        for extension in district.get("extension") or []:
            if extension.get("url") == MUNICIPALITY_EXTENSION:
                code = extension.get("valueCoding", {}).get("code")
                if isinstance(code, str) and len(code) == 4 and code.isdigit():
                    return code[:2]
    return None


def _count(observations: Sequence[Resource], key: str) -> int | None:
    found = latest(observations, key)
    if found is None:
        return None
    if isinstance(found.get("valueInteger"), int):
        return int(found["valueInteger"])
    number = found.get("valueQuantity", {}).get("value")
    return int(number) if isinstance(number, int | float) else None


def _due(dated: Dating) -> dict[str, Any] | None:
    if dated.due is None or dated.method is None:
        return None
    out: dict[str, Any] = {"month": dated.due.strftime("%Y-%m"), "method": dated.method.value}
    if dated.by_lmp is not None:
        out["byLmpDaysFromDue"] = (dated.by_lmp - dated.due).days
    return out


def record(key: bytes, data: Pregnancy) -> Record:
    """The research record of one pregnancy (README.md): nothing from the source resources but
    what is picked here."""
    observations = data.of("Observation")
    dated = dating(observations)
    due = dated.due
    period = data.episode.get("period", {})
    visits, loose = consultations(data.of("Encounter"), observations, due)
    others = [c for c in data.of("Condition") if not is_pregnancy_condition(c)]
    return {
        "format": FORMAT,
        "woman": pseudonym.woman(key, data.patient),
        "pregnancy": pseudonym.pregnancy(key, str(data.episode.get("id"))),
        "ageAtDue": age_in_years(day_of(data.patient.get("birthDate")), due),
        "county": county(data.patient),
        "due": _due(dated),
        "start": gestation(due, day_of(period.get("start"))),
        "end": gestation(due, day_of(period.get("end"))),
        "gravida": _count(observations, "gravida"),
        "para": _count(observations, "para"),
        "consultations": visits,
        "observations": loose,
        "conditions": _order([condition(c, due) for c in others]),
        "serviceRequests": _order([service_request(s, due) for s in data.of("ServiceRequest")]),
        "procedures": _order([procedure(p, due) for p in data.of("Procedure")]),
    }
