"""Load a small synthetic Norwegian demo data set (`python -m app.demo`, run by `make run`).

Everything here is fictitious: synthetic fødselsnummer (Tenor style, month + 80) with valid check digits,
invented organisation numbers, HER-ids and HPR numbers. Resources have fixed ids and are written with
PUT through the engine's service layer in one unit of work, so loading twice changes nothing (no-op
updates) and references between the resources need no order.

Sigrid, the demo's pregnant woman (app/demo_pregnancy.py), has dates that follow the load day: her
pregnancy is always as far along, so a reload on a later day writes new versions of her dated resources
(and the pregnancy card pack's flow moves her derived due dates and CarePlan), while a reload on the same
day is a no-op like the rest.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.demo_pregnancy import pregnancy_resources
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.interactions.update import update
from app.fhir.service import FhirService
from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    HERID_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    synthetic_fnr,
)
from app.resources.pregnancy_card.dates import OSLO

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


def load_day() -> date:
    """Today in Oslo: the day Sigrid's dates follow."""
    return datetime.now(OSLO).date()


def demo_resources(today: date | None = None) -> list[dict[str, Any]]:
    """The demo data set; Sigrid's pregnancy is dated from `today` (default: `load_day()`)."""
    return [*_identities_and_records(), *pregnancy_resources(today or load_day())]


def _identities_and_records() -> list[dict[str, Any]]:
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
        organization(
            "helsestasjon-fjordby",
            "Fjordby helsestasjon (demo)",
            "994000004",
            "8000003",
            "Fjordby",
            "Helsestasjon",
        ),
        {
            "resourceType": "Practitioner",
            "id": "jordmor-dahl",
            "identifier": [{"system": HPR_SYSTEM, "value": "9100004"}],
            "name": [{"family": "Dahl", "given": ["Hanne"]}],
            "qualification": [
                {
                    "code": {
                        "coding": [
                            {"system": "urn:oid:2.16.578.1.12.4.1.1.9060", "code": "JO", "display": "Jordmor"}
                        ]
                    }
                }
            ],
        },
        {
            "resourceType": "PractitionerRole",
            "id": "jordmor-dahl",
            "active": True,
            "practitioner": {"reference": "Practitioner/jordmor-dahl"},
            "organization": {"reference": "Organization/helsestasjon-fjordby"},
            "code": [{"text": "Jordmor"}],
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
        patient(
            "sigrid",
            ["Sigrid"],
            "Fjeldheim",
            synthetic_fnr(21, 3, 1994, 402),  # an even individual number: a woman's
            "female",
            "1994-03-21",
            "1103",
            "Stavanger",
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


async def load(svc: FhirService, today: date | None = None) -> dict[int, int]:
    """PUT every demo resource (dated from `today`, default the load day); returns a count per HTTP
    status (201 new, 200 unchanged or updated)."""
    ctx = RequestContext("", SystemPrincipal("demo-loader", "load the synthetic demo data"), "demo-loader")
    resources = demo_resources(today)

    async def put_all(conn: AsyncConnection) -> dict[int, int]:
        counts: dict[int, int] = {}
        for resource in resources:
            result = await update(svc, ctx, resource["resourceType"], resource["id"], resource, conn=conn)
            counts[result.status] = counts.get(result.status, 0) + 1
        return counts

    # One unit of work: the pregnancy and its Condition name each other (references are checked at its
    # end), and the pack's flow dates her pregnancy once, from all of her dating.
    return await in_unit_of_work(svc, put_all, "Loading the demo data")


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
