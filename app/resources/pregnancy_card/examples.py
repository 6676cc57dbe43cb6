"""Pure builders of a pregnancy's resources as the card models them (README.md, "The model").

Used by the demo data (app/demo_pregnancy.py), the pack's tests and the portal's browser tests, so a card
resource is shaped in one place: the episode, its Condition and CareTeam, Observations with the pack's
codes, consultations (Encounter) and the woman's notes. Every function returns a new dict.
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
    """The resource naming its pregnancy with the episode extension (a copy)."""
    extension = {"url": EPISODE_EXTENSION, "valueReference": {"reference": f"EpisodeOfCare/{episode}"}}
    return {**resource, "extension": [*resource.get("extension", []), extension]}


def episode(eid: str, pid: str, start: str, team: str | None = None, follow_up: str = "begge") -> Resource:
    """The pregnancy EpisodeOfCare; its diagnosis is the Condition `pregnancy()` builds (`<eid>-pregnancy`)."""
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
    """An Observation coded with the pack's `key` (codes.CODES); `value` holds its value[x] element."""
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
    """A valueQuantity in a UCUM unit."""
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def blood_pressure(oid: str, eid: str, pid: str, when: str, encounter: str, high: int, low: int) -> Resource:
    resource = observation(oid, eid, pid, "bp", when, {}, encounter)
    resource["component"] = [
        {"code": clinical("bp_systolic").concept(), **quantity(high, "mm[Hg]")},
        {"code": clinical("bp_diastolic").concept(), **quantity(low, "mm[Hg]")},
    ]
    return resource


def consultation(cid: str, eid: str, pid: str, day: str, provider: str, display: str) -> Resource:
    """A finished consultation (Encounter of the episode) on `day` (YYYY-MM-DD), at `provider`."""
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


def order(
    sid: str, eid: str, pid: str, key: str, day: str, performer: str, status: str = "completed"
) -> Resource:
    """A test or examination ordered for the pregnancy (the ultrasounds, NIPT: codes of resource
    ServiceRequest), done on `day` by `performer` when `status` is completed (which holds the programme's
    ultrasound consultations for $next)."""
    return of_episode(
        {
            "resourceType": "ServiceRequest",
            "id": sid,
            "status": status,
            "intent": "order",
            "code": clinical(key).concept(),
            "subject": {"reference": f"Patient/{pid}"},
            "occurrenceDateTime": day,
            "performer": [{"reference": performer}],
        },
        eid,
    )


def note(nid: str, eid: str, pid: str, text: str, sent: str, category: str = "sporsmal") -> Resource:
    """The woman's own note or question (codes.NOTE_CATEGORIES), sent by her."""
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
