"""One pregnancy walked through the secured API, on SQLite and PostgreSQL (issue 15's "done when").

Kari (synthetic) is pregnant. Her GP registers the pregnancy with her last menstrual period; the
hospital's early ultrasound moves the due date; the municipal midwife records consultations; the
hospital's maternity ward reads the card when she arrives; Kari sees everything and adds a question. A
midwife outside the care team is refused and audited; an organisation outside the pilot area cannot
write. Tokens from the dev issuer; every actor and identity is synthetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.resources.no_basis.identifiers import FNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM
from app.resources.pregnancy_card.codes import (
    EPISODE_TYPE_CARD,
    EPISODE_TYPE_SNOMED,
    FOLLOW_UP_EXTENSION,
    PREGNANCY_CONDITION,
    clinical,
)
from app.resources.pregnancy_card.examples import blood_pressure, consultation, note, observation, quantity
from app.security.audit import SERVICE_SYSTEM
from app.security.facts import PROXY
from tests.resources.pregnancy_card.conftest import Pilot
from tests.security.helpers import World, auth_header
from tests.security.scenario import (
    GP_OFFICE_ORGNR,
    HOSPITAL_ORGNR,
    NILS_FNR,
    OTHER_CLINIC_ORGNR,
    consent,
    orgnr,
)

STATION_ORGNR = orgnr("93571594")  # Fjordvik helsestasjon (synthetic)
OTHER_STATION_ORGNR = orgnr("93571595")  # a health station elsewhere (synthetic)
MIDWIFE_HPR, OTHER_MIDWIFE_HPR = "5550001", "5550002"
CARD_SERVICE = {"system": SERVICE_SYSTEM, "code": "pregnancy-card", "display": "Helsekort for gravide"}


def midwife(mint: Callable[..., str], hpr: str, number: str) -> dict[str, str]:
    token = mint(
        subject=f"hpr-{hpr}", scopes="user/*.cruds", hpr=hpr, orgnr=number, category="JO", name="Jordmor"
    )
    return auth_header(token)


def entry(resource: dict[str, Any], method: str = "PUT") -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}" if method == "PUT" else resource["resourceType"]
    return {"resource": resource, "request": {"method": method, "url": url}}


async def transaction(
    http: httpx.AsyncClient, who: dict[str, str], *resources: dict[str, Any]
) -> httpx.Response:
    body = {"resourceType": "Bundle", "type": "transaction", "entry": [entry(r) for r in resources]}
    return await http.post("/", json=body, headers=who)


def care_setting() -> list[dict[str, Any]]:
    """The health stations and their midwives (the scenario has the GP office, hospital and Naboklinikken)."""
    return [
        {
            "resourceType": "Organization",
            "id": "station",
            "name": "Fjordvik helsestasjon",
            "identifier": [{"system": ORGNR_SYSTEM, "value": STATION_ORGNR}],
        },
        {
            "resourceType": "Organization",
            "id": "other-station",
            "name": "Sørvik helsestasjon",
            "identifier": [{"system": ORGNR_SYSTEM, "value": OTHER_STATION_ORGNR}],
        },
        *(
            {
                "resourceType": "Practitioner",
                "id": pid,
                "identifier": [{"system": HPR_SYSTEM, "value": hpr}],
                "name": [{"family": family, "given": ["Jorunn"]}],
            }
            for pid, hpr, family in (
                ("midwife", MIDWIFE_HPR, "Jordmor"),
                ("other-midwife", OTHER_MIDWIFE_HPR, "Annen"),
            )
        ),
    ]


def registration() -> list[dict[str, Any]]:
    """What the GP records: the pregnancy, its care team (GP, midwife, the hospital's maternity ward) and
    her choice to be followed by both, with LMP 2026-07-01 and a 28-day cycle (due 2027-04-07)."""
    team = {
        "resourceType": "CareTeam",
        "id": "kari-pregnancy-team",
        "status": "active",
        "name": "Svangerskapsomsorg",
        "subject": {"reference": "Patient/kari"},
        "participant": [
            {
                "role": [{"text": "Fastlege"}],
                "member": {"reference": "Practitioner/gp", "display": "Fastlegen"},
            },
            {
                "role": [{"text": "Jordmor"}],
                "member": {"reference": "Practitioner/midwife", "display": "Jorunn Jordmor"},
                "onBehalfOf": {"reference": "Organization/station"},
            },
            {"role": [{"text": "Fødeavdeling"}], "member": {"reference": "Organization/hospital"}},
        ],
    }
    episode = {
        "resourceType": "EpisodeOfCare",
        "id": "kari-pregnancy",
        "extension": [{"url": FOLLOW_UP_EXTENSION, "valueCode": "begge"}],
        "status": "active",
        "type": [{"coding": [EPISODE_TYPE_SNOMED, EPISODE_TYPE_CARD]}],
        "diagnosis": [{"condition": {"reference": "Condition/kari-pregnant"}}],
        "patient": {"reference": "Patient/kari"},
        "managingOrganization": {"reference": "Organization/gp-office"},
        "period": {"start": "2026-08-20"},
        "team": [{"reference": "CareTeam/kari-pregnancy-team"}],
    }
    condition = {
        "resourceType": "Condition",
        "id": "kari-pregnant",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": {"coding": [PREGNANCY_CONDITION]},
        "subject": {"reference": "Patient/kari"},
        "onsetDateTime": "2026-07-01",
    }
    lmp = observation(
        "kari-lmp", "kari-pregnancy", "kari", "lmp", "2026-08-20", {"valueDateTime": "2026-07-01"}
    )
    return [team, episode, condition, lmp]


async def card(http: httpx.AsyncClient, who: dict[str, str]) -> dict[str, Any]:
    response = await http.get("/Patient/kari/$pregnancy-card", headers=who)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def section_text(document: dict[str, Any], code: str) -> str:
    composition = document["entry"][0]["resource"]
    part = next(s for s in composition["section"] if s["code"]["coding"][0]["code"] == code)
    return str(part["text"]["div"])


def in_document(document: dict[str, Any]) -> set[str]:
    """What the card shows (the Composition of each document has an id of its own)."""
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in document["entry"][1:]}


async def test_one_pregnancy_from_registration_to_the_maternity_ward(
    world: World, pilot: Pilot, mint: Callable[..., str]
) -> None:
    http = world.http
    pilot.set([GP_OFFICE_ORGNR, HOSPITAL_ORGNR, STATION_ORGNR])
    seeded = await transaction(http, world.system, *care_setting())
    assert seeded.status_code == 200, seeded.text
    jordmor = midwife(mint, MIDWIFE_HPR, STATION_ORGNR)
    outsider = midwife(mint, OTHER_MIDWIFE_HPR, OTHER_STATION_ORGNR)

    # The GP registers the pregnancy: due date by LMP, and her plan from it.
    registered = await transaction(http, world.gp, *registration())
    assert registered.status_code == 200, registered.text
    document = await card(http, world.gp)
    assert "Termin: 2027-04-07 (fastsatt etter siste menstruasjon)" in section_text(document, "datering")
    assert "Følges opp av: Fastlege og jordmor" in section_text(document, "svangerskapet")

    # The hospital performs the early ultrasound (it is on the care team) and dates her three days later.
    ultrasound = observation(
        "kari-us", "kari-pregnancy", "kari", "edd_ultrasound", "2026-09-21", {"valueDateTime": "2027-04-10"}
    )
    ordered = {
        "resourceType": "ServiceRequest",
        "id": "kari-early-us",
        "extension": ultrasound["extension"],
        "status": "completed",
        "intent": "order",
        "code": clinical("early_ultrasound").concept(),
        "subject": {"reference": "Patient/kari"},
        "performer": [{"reference": "Organization/hospital"}],
    }
    examined = await transaction(http, world.hospital, ordered, ultrasound)
    assert examined.status_code == 200, examined.text

    # The midwife records two consultations.
    visits = []
    for index, (day, kg, high, low) in enumerate(
        (("2026-10-26", 66.0, 112, 70), ("2026-12-07", 68.4, 118, 74))
    ):
        cid = f"kari-visit-{index}"
        visits += [
            consultation(cid, "kari-pregnancy", "kari", day, "Organization/station", "Fjordvik helsestasjon"),
            observation(f"{cid}-w", "kari-pregnancy", "kari", "weight", day, quantity(kg, "kg"), cid),
            blood_pressure(f"{cid}-bp", "kari-pregnancy", "kari", day, cid, high, low),
        ]
    recorded = await transaction(http, jordmor, *visits)
    assert recorded.status_code == 200, recorded.text

    # She arrives at the hospital's maternity ward, which reads her card: the ultrasound's due date rules.
    document = await card(http, world.hospital)
    assert "Termin: 2027-04-10 (fastsatt etter ultralyd)" in section_text(document, "datering")
    consultations = section_text(document, "konsultasjon")
    assert "Blodtrykk: 118/74 mmHg" in consultations
    assert "uke 16+2" in consultations  # 2026-10-26 by the due date in force
    assert {"Encounter/kari-visit-0", "ServiceRequest/kari-early-us", "Observation/kari-us"} <= in_document(
        document
    )
    plan = next(e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == "CarePlan")
    assert plan["description"] == "Termin 2027-04-10"

    # Kari sees everything, and asks a question for the next consultation.
    own = await card(http, world.kari)
    assert in_document(own) == in_document(document)
    asked = await http.post(
        "/Communication",
        json=note(
            "kari-q",
            "kari-pregnancy",
            "kari",
            "Kan jeg reise på ferie i uke 30?",
            "2026-12-08T19:00:00+01:00",
        ),
        headers=world.kari,
    )
    assert asked.status_code == 201, asked.text
    assert "Kan jeg reise på ferie i uke 30?" in section_text(await card(http, jordmor), "notater")

    # A midwife outside the care team is refused, and the refusal is in Kari's access log.
    refused = await http.get("/Patient/kari/$pregnancy-card", headers=outsider)
    assert refused.status_code == 403, refused.text
    events = await world.audit("patient=Patient/kari&outcome=4,8")
    assert any(
        any(
            a.get("who", {}).get("identifier", {}).get("value") == OTHER_MIDWIFE_HPR
            for a in e.get("agent", [])
        )
        for e in events
    ), events

    # Every read of the card is audited as pregnancy-card access.
    reads = await world.audit("patient=Patient/kari&outcome=0&action=R")
    assert any(CARD_SERVICE in e.get("subtype", []) for e in reads)

    # Naboklinikken, outside the pilot area, may read what its care relation allows but not write the card.
    join = {
        "resourceType": "Encounter",
        "id": "kari-at-other-clinic",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/kari"},
        "serviceProvider": {"reference": "Organization/other-clinic"},
    }
    assert (await world.put(join)).status_code in (200, 201)
    weight = observation("kari-other-w", "kari-pregnancy", "kari", "weight", "2026-12-09", quantity(69, "kg"))
    written = await http.put("/Observation/kari-other-w", json=weight, headers=world.other)
    assert written.status_code == 403, written.text
    assert "Helsekort for gravide er ikke tatt i bruk her" in written.json()["issue"][0]["diagnostics"]
    assert OTHER_CLINIC_ORGNR in written.json()["issue"][0]["diagnostics"]
    assert (await http.get("/Patient/kari/$pregnancy-card", headers=world.other)).status_code == 200


async def test_her_partner_sees_the_card_only_with_her_proxy(world: World, pilot: Pilot) -> None:
    http = world.http
    assert (await transaction(http, world.system, *care_setting())).status_code == 200
    registered = await transaction(http, world.gp, *registration())
    assert registered.status_code == 200, registered.text
    # Nils (synthetic) is the partner: without a fullmakt from Kari the card is not his to see.
    assert (await http.get("/Patient/kari/$pregnancy-card", headers=world.nils)).status_code == 403
    fullmakt = consent(
        "kari-authorises-nils",
        "kari",
        PROXY,
        period={"start": "2026-01-01"},
        actor=[
            {
                "role": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "POWATT"}
                    ]
                },
                "reference": {"identifier": {"system": FNR_SYSTEM, "value": NILS_FNR}},
            }
        ],
    )
    assert (await world.put(fullmakt, world.kari)).status_code == 201
    document = await card(http, world.nils)
    assert "Termin: 2027-04-07 (fastsatt etter siste menstruasjon)" in section_text(document, "datering")
    # ... and, reading for her, he may not write the card's content.
    weight = observation("kari-nils-w", "kari-pregnancy", "kari", "weight", "2026-12-09", quantity(69, "kg"))
    assert (await http.put("/Observation/kari-nils-w", json=weight, headers=world.nils)).status_code == 403


async def test_next_is_refused_to_a_stranger_organisation_and_another_citizen(
    world: World, pilot: Pilot
) -> None:
    http = world.http
    assert (await transaction(http, world.system, *care_setting())).status_code == 200
    assert (await transaction(http, world.gp, *registration())).status_code == 200
    plans = (await http.get("/CarePlan?subject=Patient/kari", headers=world.system)).json()["entry"]
    url = f"/CarePlan/{plans[0]['resource']['id']}/$next"
    assert (await http.get(url, headers=world.gp)).status_code == 200
    assert (await http.get(url, headers=world.kari)).status_code == 200
    for stranger in (world.other, world.nils):  # no care relation; not her, no fullmakt
        assert (await http.get(url, headers=stranger)).status_code == 403
