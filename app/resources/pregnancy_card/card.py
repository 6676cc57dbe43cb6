"""The pregnancy card as a FHIR document (pure): a Composition whose sections follow the paper card
(Helsekort for gravide), then every resource it shows, once.

The same data gives the same document except Bundle.id, Composition.id and the timestamp (and the
gestational age "today", which is the timestamp's day in Norway), whoever reads it: the midwife, the GP,
the hospital and the woman see one card, less only what the access policy hides from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.fhir.document import document_bundle, entry_line, instant, label, section, when
from app.resources.pregnancy_card import dates
from app.resources.pregnancy_card.codes import (
    CARD_SYSTEM,
    CODES,
    FOLLOW_UP_CODES,
    FOLLOW_UP_EXTENSION,
    LOINC,
    Section,
)
from app.resources.pregnancy_card.content import is_pregnancy_condition
from app.resources.pregnancy_card.dating import Dating, age_on, dating, observation_key
from app.resources.pregnancy_card.gather import CardData

# IHE's Antepartum Summary (PCC APS): the document type closest to the Norwegian card.
CARD_TYPE = {"system": LOINC, "code": "57055-6", "display": "Antepartum summary Document"}
CARD_TITLE = "Helsekort for gravide"
Resource = dict[str, Any]


@dataclass(frozen=True)
class CardSection:
    code: str  # in CARD_SYSTEM
    title: str
    loinc: tuple[str, str] | None = None  # the matching IPS/C-CDA section code, where there is one


SECTIONS = (
    CardSection("svangerskapet", "Svangerskapet og hvem som følger henne opp"),
    CardSection(Section.DATING.value, "Termin og svangerskapslengde"),
    CardSection(
        Section.HISTORY.value,
        "Tidligere svangerskap, helse og levevaner",
        ("10162-6", "History of pregnancies Narrative"),
    ),
    CardSection("sykdom-legemidler-allergier", "Sykdommer, legemidler og allergier"),
    CardSection(
        Section.TESTS.value,
        "Prøver og undersøkelser",
        ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
    ),
    CardSection(
        Section.CONSULTATION.value,
        "Konsultasjoner",
        ("46240-8", "History of Hospitalizations+Outpatient visits Narrative"),
    ),
    CardSection("plan", "Plan for svangerskapsomsorgen", ("18776-5", "Plan of care note")),
    CardSection("notater", "Kvinnens notater og spørsmål"),
)
# The subsections of "Sykdommer, legemidler og allergier" (IPS section codes).
HEALTH_PARTS = (
    ("Sykdommer", ("11450-4", "Problem list - Reported"), "illnesses"),
    ("Legemidler (legemiddellisten)", ("10160-0", "History of Medication use Narrative"), "medicines"),
    ("Allergier (kjernejournalen)", ("48765-2", "Allergies and adverse reactions Document"), "allergies"),
)


def _code(s: CardSection) -> dict[str, Any]:
    return {"system": CARD_SYSTEM, "code": s.code, "display": s.title}


def section_of(observation: Mapping[str, Any]) -> str:
    """The section an Observation of the pregnancy belongs in: its code's (codes.py), else a
    consultation's if it was recorded at one, else the tests'."""
    key = observation_key(observation)
    if key is not None:
        return CODES[key].section.value
    return Section.CONSULTATION.value if observation.get("encounter") else Section.TESTS.value


def value_text(observation: Mapping[str, Any]) -> str:
    """An Observation's value as the card prints it (blood pressure as systolic/diastolic)."""
    if "valueQuantity" in observation:
        q = observation["valueQuantity"]
        return f"{_number(q.get('value'))} {q.get('unit') or q.get('code') or ''}".strip()
    for element in ("valueCodeableConcept",):
        if element in observation:
            concept = observation[element]
            codings = concept.get("coding", [{}])
            return str(concept.get("text") or codings[0].get("display") or codings[0].get("code") or "")
    for element in ("valueString", "valueDateTime", "valueInteger"):
        if element in observation:
            return str(observation[element])[: 10 if element == "valueDateTime" else None]
    if "valueBoolean" in observation:
        return "ja" if observation["valueBoolean"] else "nei"
    parts = {
        observation_key(c) or "": c.get("valueQuantity", {}).get("value")
        for c in observation.get("component", [])
    }
    if parts.get("bp_systolic") is not None and parts.get("bp_diastolic") is not None:
        return f"{_number(parts['bp_systolic'])}/{_number(parts['bp_diastolic'])} mmHg"
    return ""


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _line(observation: Mapping[str, Any]) -> str:
    key = observation_key(observation)
    name = CODES[key].display_no if key else label(observation)
    value = value_text(observation)
    day = when(observation)[:10]
    return f"{name}: {value}" + (f" ({day})" if day else "") if value else entry_line(observation)


def _sorted(resources: Sequence[Resource]) -> list[Resource]:
    """Chronological, then by id: a stable order for the same data."""
    by_id = sorted(resources, key=lambda r: str(r["id"]))
    return sorted(by_id, key=when)


def _follow_up(episode: Mapping[str, Any]) -> str | None:
    for extension in episode.get("extension", []):
        if extension.get("url") == FOLLOW_UP_EXTENSION:
            return FOLLOW_UP_CODES.get(str(extension.get("valueCode")))
    return None


def _members(team: Mapping[str, Any]) -> list[str]:
    out = []
    for participant in team.get("participant", []):
        member = participant.get("member", {})
        role = participant.get("role", [{}])[0] if participant.get("role") else {}
        who = member.get("display") or member.get("reference") or "ukjent"
        what = role.get("text") or (role.get("coding") or [{}])[0].get("display")
        out.append(f"{who} ({what})" if what else str(who))
    return out


def _pregnancy_lines(data: CardData) -> list[str]:
    episode = data.episode
    lines = [f"Status: {episode.get('status', 'ukjent')}"]
    start = episode.get("period", {}).get("start")
    if start:
        lines.append(f"Registrert: {str(start)[:10]}")
    follow_up = _follow_up(episode)
    lines.append(f"Følges opp av: {follow_up}" if follow_up else "Følges opp av: ikke valgt")
    for team in data.of("CareTeam"):
        lines += [f"{team.get('name') or 'Omsorgsteam'}: {m}" for m in _members(team)]
    return lines


def _dating_lines(dated: Dating, today: date) -> list[str]:
    lines = []
    if dated.lmp:
        cycle = f", syklus {dated.cycle_length} dager" if dated.cycle_length else ""
        lines.append(f"Siste menstruasjon: {dated.lmp.isoformat()}{cycle}")
    if dated.by_lmp:
        lines.append(f"Termin etter siste menstruasjon: {dated.by_lmp.isoformat()}")
    if dated.by_ultrasound:
        lines.append(f"Termin etter ultralyd: {dated.by_ultrasound.isoformat()}")
    if dated.due and dated.method:
        how = "ultralyd" if dated.method is dates.DatingMethod.ULTRASOUND else "siste menstruasjon"
        lines.append(f"Termin: {dated.due.isoformat()} (fastsatt etter {how})")
        age = age_on(dated, today)
        if age is not None:
            lines.append(f"Svangerskapslengde {today.isoformat()}: {age}")
    return lines


def _consultation_lines(
    encounters: Sequence[Resource], observations: Sequence[Resource], dated: Dating
) -> list[str]:
    at: dict[str, list[Resource]] = {}
    for o in observations:
        at.setdefault(str(o.get("encounter", {}).get("reference", "")), []).append(o)
    lines = []
    for e in encounters:
        day = when(e)[:10]
        age = age_on(dated, date.fromisoformat(day)) if len(day) == 10 else None
        where = e.get("serviceProvider", {}).get("display") or ""
        values = "; ".join(_line(o) for o in _sorted(at.get(f"Encounter/{e['id']}", [])))
        head = " ".join(p for p in (day, f"uke {age}" if age else "", where) if p)
        lines.append(f"{head}: {values}" if values else head)
    return lines


def _plan_lines(plans: Sequence[Resource]) -> list[str]:
    lines = []
    for plan in plans:
        for activity in plan.get("activity", []):
            detail = activity.get("detail", {})
            period = detail.get("scheduledPeriod", {})
            window = f"{period.get('start', '?')} – {period.get('end', '?')}"
            lines.append(
                f"{detail.get('description') or label(detail)}: {window} ({detail.get('status', '')})"
            )
    return lines


def _note_lines(notes: Sequence[Resource]) -> list[str]:
    lines = []
    for note in notes:
        text = " ".join(str(p.get("contentString", "")) for p in note.get("payload", []))
        lines.append(f"{when(note)[:10]} {label(note)}: {text}".strip())
    return lines


def document(data: CardData, base: str, document_id: str, now: datetime) -> dict[str, Any]:
    """The card as a document Bundle: Composition, the woman, the pregnancy, then each section's
    resources in section order."""
    stamp, today = instant(now), dates.local_date(now)
    observations = data.of("Observation")
    dated = dating(observations)
    by_section: dict[str, list[Resource]] = {}
    for o in observations:
        by_section.setdefault(section_of(o), []).append(o)
    pregnancy_conditions = [c for c in data.of("Condition") if is_pregnancy_condition(c)]
    other_conditions = [c for c in data.of("Condition") if not is_pregnancy_condition(c)]
    encounters = _sorted(data.of("Encounter"))
    consultation_obs = _sorted(by_section.get(Section.CONSULTATION.value, []))
    tests = _sorted(
        [
            *by_section.get(Section.TESTS.value, []),
            *data.of("ServiceRequest"),
            *data.of("DiagnosticReport"),
            *data.of("Procedure"),
        ]
    )
    history = _sorted(
        [*by_section.get(Section.HISTORY.value, []), *other_conditions, *data.of("QuestionnaireResponse")]
    )
    contents: dict[str, tuple[list[Resource], list[str] | None]] = {
        "svangerskapet": (
            [data.episode, *pregnancy_conditions, *data.of("CareTeam")],
            _pregnancy_lines(data),
        ),
        Section.DATING.value: (
            _sorted(by_section.get(Section.DATING.value, [])),
            _dating_lines(dated, today),
        ),
        Section.HISTORY.value: (
            history,
            [_line(r) if r["resourceType"] == "Observation" else entry_line(r) for r in history],
        ),
        Section.TESTS.value: (
            tests,
            [_line(r) if r["resourceType"] == "Observation" else entry_line(r) for r in tests],
        ),
        Section.CONSULTATION.value: (
            [*encounters, *consultation_obs],
            _consultation_lines(encounters, consultation_obs, dated),
        ),
        "plan": (_sorted(data.of("CarePlan")), _plan_lines(_sorted(data.of("CarePlan")))),
        "notater": (_sorted(data.of("Communication")), _note_lines(_sorted(data.of("Communication")))),
    }
    health: dict[str, list[Resource]] = {
        "illnesses": _by_label(data.illnesses),
        "medicines": _by_label(data.medicines),
        "allergies": _by_label(data.allergies),
    }
    sections = []
    for s in SECTIONS:
        if s.code == "sykdom-legemidler-allergier":
            parts = [
                section(title, {"system": LOINC, "code": code, "display": display}, health[key])
                for title, (code, display), key in HEALTH_PARTS
            ]
            out = section(s.title, _code(s), [], [f"{t}: {len(health[k])}" for t, _, k in HEALTH_PARTS])
            out.pop("emptyReason", None)
            sections.append({**out, "section": parts})
            continue
        entries, text = contents[s.code]
        out = section(s.title, _code(s), entries, text or None)
        if s.loinc:
            out["code"]["coding"].append({"system": LOINC, "code": s.loinc[0], "display": s.loinc[1]})
        sections.append(out)
    composition = {
        "resourceType": "Composition",
        "id": document_id,
        "status": "final",
        "type": {"coding": [CARD_TYPE], "text": CARD_TITLE},
        "subject": {"reference": f"Patient/{data.patient['id']}"},
        "date": stamp,
        "author": [{"display": "Helsebro helsekort for gravide"}],
        "title": CARD_TITLE,
        "event": [{"detail": [{"reference": f"EpisodeOfCare/{data.episode['id']}"}]}],
        "section": sections,
    }
    everything = [
        composition,
        data.patient,
        *(r for s in SECTIONS if s.code in contents for r in contents[s.code][0]),
        *(r for rs in health.values() for r in rs),
    ]
    return document_bundle(base, document_id, stamp, everything)


def _by_label(resources: Sequence[Resource]) -> list[Resource]:
    by_id = sorted(resources, key=lambda r: str(r["id"]))
    return sorted(by_id, key=lambda r: label(r).lower())
