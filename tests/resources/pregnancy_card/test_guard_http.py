"""The pilot switch and the card's write guard through the API, on SQLite and PostgreSQL, in the secured
care setting of tests/security/scenario.py (synthetic identities): inside the pilot area the GP writes the
card, outside it an organisation is refused writing but still reads; the pilot file changes without a
restart; the woman writes her notes and nothing else of the card."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.resources.no_basis.identifiers import ORGNR_SYSTEM
from app.resources.no_basis.search import MUNICIPALITY_EXTENSION
from app.resources.pregnancy_card.codes import CARD_SYSTEM, EPISODE_EXTENSION, EPISODE_TYPE_CARD, LOINC
from tests.resources.pregnancy_card.conftest import Pilot
from tests.security.helpers import World, auth_header
from tests.security.scenario import GP_OFFICE_ORGNR, HOSPITAL_ORGNR, OTHER_CLINIC_ORGNR, orgnr

UNIT_ORGNR = orgnr("96385274")  # a unit under a trust (synthetic)
TRUST_ORGNR = orgnr("95175382")


def episode() -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [{"coding": [EPISODE_TYPE_CARD]}],
        "patient": {"reference": "Patient/kari"},
        "period": {"start": "2026-10-01"},
    }


def note(text: str) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": CARD_SYSTEM, "code": "sporsmal"}]}],
        "subject": {"reference": "Patient/kari"},
        "payload": [{"contentString": text}],
    }


def weight(episode_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "extension": [
            {"url": EPISODE_EXTENSION, "valueReference": {"reference": f"EpisodeOfCare/{episode_id}"}}
        ],
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "subject": {"reference": "Patient/kari"},
        "valueQuantity": {"value": 70, "unit": "kg"},
    }


def personnel(mint: Callable[..., str], hpr: str, number: str) -> dict[str, str]:
    token = mint(
        subject=f"hpr-{hpr}", scopes="user/*.cruds", hpr=hpr, orgnr=number, category="JO", name="Jordmor"
    )
    return auth_header(token)


async def care_at(world: World, org_id: str) -> None:
    """An ongoing encounter of Kari at the organisation: a care relation (tjenstlig behov)."""
    encounter = {
        "resourceType": "Encounter",
        "id": f"kari-at-{org_id}",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/kari"},
        "serviceProvider": {"reference": f"Organization/{org_id}"},
    }
    stored = await world.put(encounter)
    assert stored.status_code in (200, 201), stored.text


async def test_pilot_switch(world: World, pilot: Pilot) -> None:
    http = world.http
    # the GP, inside the pilot area, starts the card
    created = await http.post("/EpisodeOfCare", json=episode(), headers=world.gp)
    assert created.status_code == 201, created.text
    episode_id = created.json()["id"]

    # Naboklinikken, in care of Kari but outside the area: refused writing, with a clear OperationOutcome
    await care_at(world, "other-clinic")
    refused = await http.post("/EpisodeOfCare", json=episode(), headers=world.other)
    assert refused.status_code == 403, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    text = outcome["issue"][0]["diagnostics"]
    assert "Helsekort for gravide er ikke tatt i bruk her" in text
    assert OTHER_CLINIC_ORGNR in text
    assert "not enabled" in text
    for write in (
        http.post("/Observation", json=weight(episode_id), headers=world.other),
        http.put(f"/EpisodeOfCare/{episode_id}", json={**episode(), "id": episode_id}, headers=world.other),
        http.delete(f"/EpisodeOfCare/{episode_id}", headers=world.other),
    ):
        assert (await write).status_code == 403
    # ... an Encounter of the pregnancy is card content too (its episodeOfCare is read through the engine)
    visit = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/kari"},
        "episodeOfCare": [{"reference": f"EpisodeOfCare/{episode_id}"}],
    }
    assert (await http.post("/Encounter", json=visit, headers=world.other)).status_code == 403
    # ... while writing what is not card content is not the pilot's business
    plain = {k: v for k, v in weight(episode_id).items() if k != "extension"}
    assert (await http.post("/Observation", json=plain, headers=world.other)).status_code == 201

    # ... and the card is read as before
    read = await http.get(f"/EpisodeOfCare/{episode_id}", headers=world.other)
    assert read.status_code == 200, read.text
    assert read.json()["type"][0]["coding"][0]["code"] == EPISODE_TYPE_CARD["code"]

    # the refusal is audited like the security layer's own
    audit = await world.audit("outcome=4")
    assert any("pregnancy card" in (e.get("outcomeDesc") or "") for e in audit), audit

    # the pilot grows to Naboklinikken: it writes, without a restart
    pilot.set([GP_OFFICE_ORGNR, HOSPITAL_ORGNR, OTHER_CLINIC_ORGNR])
    assert (await http.post("/Encounter", json=visit, headers=world.other)).status_code == 201
    weighed = await http.post("/Observation", json=weight(episode_id), headers=world.other)
    assert weighed.status_code == 201, weighed.text

    # and is switched off everywhere: even the GP is refused
    pilot.set([])
    assert (await http.post("/Observation", json=weight(episode_id), headers=world.gp)).status_code == 403
    assert (await http.get(f"/Observation/{weighed.json()['id']}", headers=world.gp)).status_code == 200


async def test_area_through_part_of_and_municipality(
    world: World, pilot: Pilot, mint: Callable[..., str]
) -> None:
    http = world.http
    district = {"url": MUNICIPALITY_EXTENSION, "valueCoding": {"code": "4601"}}
    for org in (
        {
            "resourceType": "Organization",
            "id": "trust",
            "identifier": [{"system": ORGNR_SYSTEM, "value": TRUST_ORGNR}],
            "address": [{"city": "Bergen", "district": "Bergen", "_district": {"extension": [district]}}],
        },
        {
            "resourceType": "Organization",
            "id": "unit",
            "identifier": [{"system": ORGNR_SYSTEM, "value": UNIT_ORGNR}],
            "partOf": {"reference": "Organization/trust"},
        },
    ):
        assert (await world.put(org)).status_code == 201
    await care_at(world, "unit")
    midwife = personnel(mint, "565501872", UNIT_ORGNR)

    assert (await http.post("/EpisodeOfCare", json=episode(), headers=midwife)).status_code == 403
    pilot.set([TRUST_ORGNR])  # the health trust above the unit
    created = await http.post("/EpisodeOfCare", json=episode(), headers=midwife)
    assert created.status_code == 201, created.text
    pilot.set(municipalities=["4601"])  # the trust's municipality
    assert (await http.post("/EpisodeOfCare", json=episode(), headers=midwife)).status_code == 201
    pilot.set(municipalities=["0301"])
    assert (await http.post("/EpisodeOfCare", json=episode(), headers=midwife)).status_code == 403


async def test_the_woman_writes_her_notes_only(world: World, pilot: Pilot) -> None:
    http = world.http
    created = await http.post("/EpisodeOfCare", json=episode(), headers=world.gp)
    assert created.status_code == 201, created.text
    episode_id = created.json()["id"]
    pilot.set([])  # citizens are not held to the pilot

    written = await http.post("/Communication", json=note("Kan jeg trene som før?"), headers=world.kari)
    assert written.status_code == 201, written.text
    own = await http.get(f"/Communication/{written.json()['id']}", headers=world.kari)
    assert own.status_code == 200, own.text

    refused = await http.post("/Observation", json=weight(episode_id), headers=world.kari)
    assert refused.status_code == 403, refused.text
    assert "Kvinnen kan legge til egne notater og spørsmål" in refused.text
    changed = {**created.json(), "status": "finished"}
    refused_update = await http.put(f"/EpisodeOfCare/{episode_id}", json=changed, headers=world.kari)
    assert refused_update.status_code == 403, refused_update.text
    assert "ikke endre helsekortets innhold" in refused_update.text
    # another citizen cannot write a note on Kari's card (the access policy)
    assert (await http.post("/Communication", json=note("?"), headers=world.nils)).status_code == 403
