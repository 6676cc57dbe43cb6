"""One synthetic pregnancy as FHIR resources with fixed ids, for the pack's HTTP tests.

Mari (a synthetic woman) is registered by her GP with her last menstrual period; the hospital's early
ultrasound then dates the pregnancy; the midwife records consultations; Mari writes a question.
"""

from __future__ import annotations

from typing import Any

from app.resources.pregnancy_card.codes import (
    CARD_SYSTEM,
    EPISODE_EXTENSION,
    EPISODE_TYPE_CARD,
    EPISODE_TYPE_SNOMED,
    FOLLOW_UP_EXTENSION,
    PREGNANCY_CONDITION,
    UCUM,
    clinical,
)

Resource = dict[str, Any]


def of_episode(resource: Resource, episode: str) -> Resource:
    extension = {"url": EPISODE_EXTENSION, "valueReference": {"reference": f"EpisodeOfCare/{episode}"}}
    return {**resource, "extension": [*resource.get("extension", []), extension]}


def patient(pid: str, birth_date: str = "1994-05-17") -> Resource:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Testesen", "given": ["Mari"]}],
        "gender": "female",
        "birthDate": birth_date,
    }


def episode(eid: str, pid: str, start: str, team: str | None = None, follow_up: str = "begge") -> Resource:
    resource: Resource = {
        "resourceType": "EpisodeOfCare",
        "id": eid,
        "extension": [{"url": FOLLOW_UP_EXTENSION, "valueCode": follow_up}],
        "status": "active",
        "type": [{"coding": [EPISODE_TYPE_SNOMED, EPISODE_TYPE_CARD]}],
        "diagnosis": [{"condition": {"reference": f"Condition/{eid}-pregnancy"}}],
        "patient": {"reference": f"Patient/{pid}"},
        "period": {"start": start},
    }
    if team:
        resource["team"] = [{"reference": f"CareTeam/{team}"}]
    return resource


def pregnancy(eid: str, pid: str, onset: str) -> Resource:
    return of_episode(
        {
            "resourceType": "Condition",
            "id": f"{eid}-pregnancy",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
            "code": {"coding": [PREGNANCY_CONDITION]},
            "subject": {"reference": f"Patient/{pid}"},
            "onsetDateTime": onset,
        },
        eid,
    )


def care_team(tid: str, pid: str, members: list[tuple[str, str, str]]) -> Resource:
    """members: (reference, display, role text)."""
    return {
        "resourceType": "CareTeam",
        "id": tid,
        "status": "active",
        "name": "Svangerskapsomsorg",
        "subject": {"reference": f"Patient/{pid}"},
        "participant": [
            {"role": [{"text": role}], "member": {"reference": ref, "display": display}}
            for ref, display, role in members
        ],
    }


def observation(
    oid: str, eid: str, pid: str, key: str, when: str, value: Resource, encounter: str | None = None
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": clinical(key).concept(),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        **value,
    }
    if encounter:
        resource["encounter"] = {"reference": f"Encounter/{encounter}"}
    return of_episode(resource, eid)


def quantity(value: float, unit: str) -> Resource:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def blood_pressure(oid: str, eid: str, pid: str, when: str, encounter: str, high: int, low: int) -> Resource:
    resource = observation(oid, eid, pid, "bp", when, {}, encounter)
    resource["component"] = [
        {"code": clinical("bp_systolic").concept(), **quantity(high, "mm[Hg]")},
        {"code": clinical("bp_diastolic").concept(), **quantity(low, "mm[Hg]")},
    ]
    return resource


def consultation(cid: str, eid: str, pid: str, day: str, provider: str, display: str) -> Resource:
    return {
        "resourceType": "Encounter",
        "id": cid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "episodeOfCare": [{"reference": f"EpisodeOfCare/{eid}"}],
        "period": {"start": f"{day}T10:00:00+01:00", "end": f"{day}T10:30:00+01:00"},
        "serviceProvider": {"reference": provider, "display": display},
    }


def note(nid: str, eid: str, pid: str, text: str, sent: str, category: str = "sporsmal") -> Resource:
    return of_episode(
        {
            "resourceType": "Communication",
            "id": nid,
            "status": "completed",
            "category": [{"coding": [{"system": CARD_SYSTEM, "code": category}]}],
            "subject": {"reference": f"Patient/{pid}"},
            "sender": {"reference": f"Patient/{pid}"},
            "sent": sent,
            "payload": [{"contentString": text}],
        },
        eid,
    )


def care_setting() -> list[Resource]:
    """The GP office, the health station and the GP the pregnancy's resources name."""
    return [
        {"resourceType": "Organization", "id": "gp-office", "name": "Legekontoret"},
        {"resourceType": "Organization", "id": "health-station", "name": "Helsestasjonen"},
        {"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Lege", "given": ["Kari"]}]},
    ]


def registered_pregnancy(pid: str, eid: str) -> list[Resource]:
    """Registered by the GP on 2026-08-20 with LMP 2026-07-01 and a 30-day cycle (due 2027-04-09 by
    LMP); the hospital's ultrasound on 2026-09-22 measured 12+0 (due 2027-04-06, which wins); two
    consultations; a question from Mari."""
    return [
        *care_setting(),
        patient(pid),
        care_team(f"{eid}-team", pid, [("Practitioner/gp", "Fastlege Kari Lege", "Fastlege")]),
        episode(eid, pid, "2026-08-20", team=f"{eid}-team"),
        pregnancy(eid, pid, "2026-07-01"),
        observation(f"{eid}-lmp", eid, pid, "lmp", "2026-08-20", {"valueDateTime": "2026-07-01"}),
        observation(f"{eid}-cycle", eid, pid, "cycle_length", "2026-08-20", quantity(30, "d")),
        observation(
            f"{eid}-edd-us", eid, pid, "edd_ultrasound", "2026-09-22", {"valueDateTime": "2027-04-06"}
        ),
        consultation(f"{eid}-c1", eid, pid, "2026-08-20", "Organization/gp-office", "Legekontoret"),
        observation(f"{eid}-w1", eid, pid, "weight", "2026-08-20", quantity(64.2, "kg"), f"{eid}-c1"),
        blood_pressure(f"{eid}-bp1", eid, pid, "2026-08-20", f"{eid}-c1", 112, 70),
        consultation(f"{eid}-c2", eid, pid, "2026-10-27", "Organization/health-station", "Helsestasjonen"),
        observation(f"{eid}-w2", eid, pid, "weight", "2026-10-27", quantity(66.0, "kg"), f"{eid}-c2"),
        observation(f"{eid}-sf2", eid, pid, "sf_height", "2026-10-27", quantity(19, "cm"), f"{eid}-c2"),
        note(f"{eid}-q1", eid, pid, "Kan jeg fortsette å løpe?", "2026-10-30T20:00:00+01:00"),
    ]
