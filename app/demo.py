"""Load a small synthetic Norwegian demo data set (`python -m app.demo`, run by `make run`).

Everything here is fictitious: synthetic fødselsnummer (Tenor style, month + 80) with valid check digits,
invented organisation numbers, HER-ids and HPR numbers. Resources have fixed ids and are written with
PUT through the engine's service layer, so loading twice changes nothing (no-op updates).
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.config import Settings
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.interactions.update import update
from app.fhir.service import FhirService
from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    HERID_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    synthetic_fnr,
)

MUNICIPALITY_EXT = "http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode"


def organization(res_id: str, name: str, orgnr: str, her_id: str, city: str, kind: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": res_id,
        "identifier": [{"system": ORGNR_SYSTEM, "value": orgnr}, {"system": HERID_SYSTEM, "value": her_id}],
        "active": True,
        "type": [{"text": kind}],
        "name": name,
        "address": [{"city": city, "country": "NO"}],
    }


def patient(
    res_id: str,
    given: list[str],
    family: str,
    fnr: str,
    gender: str,
    birth: str,
    municipality: str,
    city: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": res_id,
        "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": fnr}],
        "name": [{"use": "official", "family": family, "given": given}],
        "gender": gender,
        "birthDate": birth,
        "address": [
            {
                "use": "home",
                "city": city,
                "district": "demo",
                "_district": {
                    "extension": [
                        {
                            "url": MUNICIPALITY_EXT,
                            "valueCoding": {
                                "system": "urn:oid:2.16.578.1.12.4.1.1.3402",
                                "code": municipality,
                            },
                        }
                    ]
                },
                "country": "NO",
            }
        ],
        "generalPractitioner": [{"reference": "PractitionerRole/fastlege-lind"}],
    }


def demo_resources() -> list[dict[str, Any]]:
    return [
        organization(
            "sykehuset-fjordby",
            "Sykehuset Fjordby HF (demo)",
            "991000003",
            "8000001",
            "Fjordby",
            "Helseforetak",
        ),
        organization(
            "legekontor-fjordby", "Fjordby legekontor (demo)", "992000007", "8000002", "Fjordby", "Legekontor"
        ),
        {
            "resourceType": "Practitioner",
            "id": "lege-lind",
            "identifier": [{"system": HPR_SYSTEM, "value": "9100001"}],
            "name": [{"family": "Lind", "given": ["Øyvind"]}],
            "qualification": [
                {
                    "code": {
                        "coding": [
                            {"system": "urn:oid:2.16.578.1.12.4.1.1.9060", "code": "LE", "display": "Lege"}
                        ]
                    }
                }
            ],
        },
        {
            "resourceType": "PractitionerRole",
            "id": "fastlege-lind",
            "active": True,
            "practitioner": {"reference": "Practitioner/lege-lind"},
            "organization": {"reference": "Organization/legekontor-fjordby"},
            "code": [{"text": "Fastlege"}],
        },
        patient(
            "kari",
            ["Kari"],
            "Nordmann",
            synthetic_fnr(13, 9, 1972, 100),
            "female",
            "1972-09-13",
            "4601",
            "Bergen",
        ),
        patient(
            "ase",
            ["Åse"],
            "Ødegård",
            synthetic_fnr(2, 2, 1948, 200),
            "female",
            "1948-02-02",
            "5001",
            "Trondheim",
        ),
        patient(
            "oyvind",
            ["Øyvind", "Bjørn"],
            "Ærø",
            synthetic_fnr(30, 6, 1985, 300),
            "male",
            "1985-06-30",
            "0301",
            "Oslo",
        ),
        patient(
            "ailu",
            ["Áilu"],
            "Čuđet",
            synthetic_fnr(17, 5, 2012, 510),
            "male",
            "2012-05-17",
            "5601",
            "Kárášjohka",
        ),
        {
            "resourceType": "Encounter",
            "id": "innleggelse-ase",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/ase"},
            "serviceProvider": {"reference": "Organization/sykehuset-fjordby"},
            "period": {"start": "2026-10-01T08:00:00+02:00", "end": "2026-10-05T12:00:00+02:00"},
        },
        {
            "resourceType": "Condition",
            "id": "diabetes-ase",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
            "code": {
                "coding": [
                    {
                        "system": "urn:oid:2.16.578.1.12.4.1.1.7110",
                        "code": "E11",
                        "display": "Diabetes type 2",
                    }
                ]
            },
            "subject": {"reference": "Patient/ase"},
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "penicillin-kari",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"text": "Penicillin"},
            "patient": {"reference": "Patient/kari"},
            "criticality": "high",
        },
        {
            "resourceType": "Observation",
            "id": "blodtrykk-oyvind",
            "status": "final",
            "code": {
                "coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"}]
            },
            "subject": {"reference": "Patient/oyvind"},
            "effectiveDateTime": "2026-11-01T09:30:00+01:00",
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {
                        "value": 128,
                        "unit": "mmHg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {
                        "value": 82,
                        "unit": "mmHg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                },
            ],
        },
    ]


async def load(svc: FhirService) -> dict[int, int]:
    """PUT every demo resource; returns a count per HTTP status (201 new, 200 unchanged or updated)."""
    ctx = RequestContext("", SystemPrincipal("demo-loader", "load the synthetic demo data"), "demo-loader")
    counts: dict[int, int] = {}
    for resource in demo_resources():
        result = await update(svc, ctx, resource["resourceType"], resource["id"], resource)
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


async def main() -> None:
    # The loader writes through the service layer (no HTTP, no token); the server it seeds may require one.
    # Errors only: its own "AUTH_MODE=off" warning would read as if the server it seeds ran without it.
    # Imported here: the app imports this module (the OpenAPI examples, the portal's demo sign-in).
    from app.main import create_app

    app = create_app(Settings(auth_mode="off", log_level="ERROR"))
    try:
        counts = await load(app.state.fhir)
    finally:
        await app.state.database.dispose()
    print(f"demo data: {counts.get(201, 0)} created, {counts.get(200, 0)} already present")


if __name__ == "__main__":
    asyncio.run(main())
