"""The automatic flow through the REST API on SQLite and PostgreSQL: critical information written by a
local system's FHIR client is recorded in the core journal with its source, duplicates from several
sources merge into one entry, and what no rule names is left alone."""

from __future__ import annotations

import asyncio
from typing import Any

from app.resources.core_journal.classify import source_references, sources
from app.resources.core_journal.codes import TAG_SYSTEM
from app.resources.no_basis.identifiers import ORGNR_SYSTEM
from tests.resources.core_journal.builders import (
    ADDISON,
    DIALYSIS,
    PACEMAKER,
    PEANUT,
    PENICILLIN,
    alert,
    allergy,
    condition,
    implant,
    treatment,
)
from tests.security.helpers import World
from tests.security.scenario import GP_OFFICE_ORGNR, HOSPITAL_ORGNR

ENTRIES = f"_tag={TAG_SYSTEM}|entry"


async def entries(world: World, res_type: str = "AllergyIntolerance") -> list[dict[str, Any]]:
    found = await world.http.get(f"/{res_type}?patient=Patient/kari&{ENTRIES}", headers=world.system)
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry", []) if e["search"]["mode"] == "match"]


def organisations(entry: dict[str, Any]) -> list[str]:
    return [
        part["valueReference"]["identifier"]["value"]
        for source in sources(entry)
        for part in source["extension"]
        if part["url"] == "organization" and part["valueReference"]["identifier"]["system"] == ORGNR_SYSTEM
    ]


async def test_a_critical_allergy_from_a_hospital_is_recorded_with_its_source(world: World) -> None:
    written = await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    assert written.status_code == 201, written.text
    [entry] = await entries(world)
    assert entry["id"] != written.json()["id"]
    assert entry["code"]["coding"] == [PENICILLIN]
    assert entry["criticality"] == "high"
    assert source_references(entry) == {f"AllergyIntolerance/{written.json()['id']}"}
    assert organisations(entry) == [HOSPITAL_ORGNR]
    assert entry["meta"]["source"] == "urn:helsebro:core-journal"


async def test_the_same_substance_from_two_sources_is_one_entry_with_two_sources(world: World) -> None:
    first = await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    reaction = {"manifestation": [{"text": "Anafylaksi"}], "severity": "severe"}
    second = await world.http.post(
        "/AllergyIntolerance", json=allergy(PENICILLIN, reaction=[reaction]), headers=world.gp
    )
    assert first.status_code == second.status_code == 201, second.text
    [entry] = await entries(world)
    assert source_references(entry) == {
        f"AllergyIntolerance/{first.json()['id']}",
        f"AllergyIntolerance/{second.json()['id']}",
    }
    assert sorted(organisations(entry)) == sorted([HOSPITAL_ORGNR, GP_OFFICE_ORGNR])
    assert entry["reaction"] == [reaction]
    # Writing a source again changes nothing: it is listed once.
    again = {**second.json(), "note": [{"text": "Kontrollert"}]}
    assert (
        await world.http.put(f"/AllergyIntolerance/{again['id']}", json=again, headers=world.gp)
    ).status_code == 200
    [entry] = await entries(world)
    assert len(sources(entry)) == 2


async def test_what_no_rule_names_stays_out_of_the_core_journal(world: World) -> None:
    low = await world.http.post("/AllergyIntolerance", json=allergy(PEANUT, "low"), headers=world.hospital)
    assert low.status_code == 201, low.text
    plain = {**condition(ADDISON), "code": {"text": "Forkjølelse"}}
    assert (await world.http.post("/Condition", json=plain, headers=world.gp)).status_code == 201
    assert await entries(world) == []
    assert await entries(world, "Condition") == []


async def test_a_critical_condition_on_the_list_is_recorded(world: World) -> None:
    written = await world.http.post("/Condition", json=condition(ADDISON), headers=world.gp)
    assert written.status_code == 201, written.text
    [entry] = await entries(world, "Condition")
    assert entry["category"][0]["coding"][0]["code"] == "kritisk-tilstand"
    assert organisations(entry) == [GP_OFFICE_ORGNR]


async def test_a_refused_write_leaves_no_entry(world: World) -> None:
    refused = await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.other)
    assert refused.status_code == 403
    assert await entries(world) == []


async def test_a_clinician_sets_the_verification_status_of_an_entry(world: World) -> None:
    assert (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).status_code == 201
    [entry] = await entries(world)
    status = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "refuted",
            }
        ]
    }
    url = f"/AllergyIntolerance/{entry['id']}"
    changed = await world.http.put(url, json={**entry, "verificationStatus": status}, headers=world.gp)
    assert changed.status_code == 200, changed.text
    assert changed.json()["verificationStatus"] == status
    # The sources and the content are the pack's.
    refused = await world.http.put(
        url, json={k: v for k, v in entry.items() if k != "extension"}, headers=world.gp
    )
    assert refused.status_code == 422
    # A second source keeps the clinician's status.
    assert (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.gp)
    ).status_code == 201
    [entry] = await entries(world)
    assert entry["verificationStatus"] == status
    assert len(sources(entry)) == 2


async def test_a_client_cannot_create_an_entry(world: World) -> None:
    [tag] = [t for t in (await _an_entry(world))["meta"]["tag"] if t["code"] == "entry"]
    forged = {**allergy(PEANUT), "meta": {"tag": [tag]}}
    refused = await world.http.post("/AllergyIntolerance", json=forged, headers=world.gp)
    assert refused.status_code == 422


async def _an_entry(world: World) -> dict[str, Any]:
    assert (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).status_code == 201
    [entry] = await entries(world)
    return entry


async def test_critical_information_in_a_transaction_is_recorded_with_it_or_not_at_all(world: World) -> None:
    def transaction(*resources: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources
            ],
        }

    both = transaction(
        allergy(PENICILLIN), allergy(PENICILLIN, reaction=[{"manifestation": [{"text": "Utslett"}]}])
    )
    done = await world.http.post("/", json=both, headers=world.hospital)
    assert done.status_code == 200, done.text
    [entry] = await entries(world)
    assert len(sources(entry)) == 2
    # A failing transaction (a reference to nothing) leaves no entry behind.
    failing = transaction(
        allergy(PEANUT), {**allergy(PEANUT), "recorder": {"reference": "Practitioner/nobody"}}
    )
    assert (await world.http.post("/", json=failing, headers=world.hospital)).status_code >= 400
    peanut = await world.http.get(
        f"/AllergyIntolerance?patient=Patient/kari&{ENTRIES}&code={PEANUT['system']}|{PEANUT['code']}",
        headers=world.system,
    )
    assert peanut.json().get("total", len(peanut.json().get("entry", []))) == 0


async def test_a_deleted_or_no_longer_critical_source_is_withdrawn_from_its_entry(world: World) -> None:
    first = (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).json()
    second = (await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.gp)).json()
    deleted = await world.http.delete(f"/AllergyIntolerance/{first['id']}", headers=world.hospital)
    assert deleted.status_code in (200, 204), deleted.text
    [entry] = await entries(world)
    assert source_references(entry) == {f"AllergyIntolerance/{second['id']}"}
    assert organisations(entry) == [GP_OFFICE_ORGNR]
    lowered = {**second, "criticality": "low"}
    changed = await world.http.put(f"/AllergyIntolerance/{second['id']}", json=lowered, headers=world.gp)
    assert changed.status_code == 200, changed.text
    assert await entries(world) == []  # its last source gone, the entry goes too


async def test_a_source_that_changes_substance_moves_to_the_other_entry(world: World) -> None:
    written = (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).json()
    moved = {**written, "code": {"coding": [PEANUT], "text": PEANUT["display"]}}
    assert (
        await world.http.put(f"/AllergyIntolerance/{written['id']}", json=moved, headers=world.hospital)
    ).status_code == 200
    [entry] = await entries(world)
    assert entry["code"]["coding"] == [PEANUT]
    assert source_references(entry) == {f"AllergyIntolerance/{written['id']}"}


async def test_concurrent_sources_of_the_same_substance_become_one_entry_listing_all(world: World) -> None:
    who = [world.hospital, world.gp] * 4
    written = await asyncio.gather(
        *(world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=h) for h in who)
    )
    assert [w.status_code for w in written] == [201] * len(who), [
        w.text for w in written if w.status_code != 201
    ]
    [entry] = await entries(world)
    assert source_references(entry) == {f"AllergyIntolerance/{w.json()['id']}" for w in written}


async def test_an_implant_an_ongoing_treatment_and_a_safety_flag_are_recorded(world: World) -> None:
    """The other categories: Device (implants), Procedure (ongoing treatment) and Flag (the rest), each an
    entry with its source; the same implant from a second source merges by its type."""
    written = {}
    for resource in (implant(PACEMAKER), treatment(DIALYSIS), alert("Voldsrisiko: kom aldri alene")):
        response = await world.http.post(
            f"/{resource['resourceType']}", json=resource, headers=world.hospital
        )
        assert response.status_code == 201, response.text
        written[resource["resourceType"]] = response.json()["id"]
    again = await world.http.post("/Device", json=implant(PACEMAKER), headers=world.gp)
    assert again.status_code == 201, again.text
    [device] = await entries(world, "Device")
    assert device["type"]["coding"] == [PACEMAKER]
    assert source_references(device) == {f"Device/{written['Device']}", f"Device/{again.json()['id']}"}
    assert sorted(organisations(device)) == sorted([HOSPITAL_ORGNR, GP_OFFICE_ORGNR])
    [procedure] = await entries(world, "Procedure")
    assert procedure["status"] == "in-progress"
    assert source_references(procedure) == {f"Procedure/{written['Procedure']}"}
    [flag] = await entries(world, "Flag")
    assert flag["code"]["text"] == "Voldsrisiko: kom aldri alene"
    assert source_references(flag) == {f"Flag/{written['Flag']}"}


async def test_a_completed_ordinary_procedure_or_an_admin_flag_stays_out(world: World) -> None:
    appendectomy = {"system": "http://snomed.info/sct", "code": "80146002", "display": "Appendectomy"}
    for resource in (treatment(appendectomy, "completed"), alert("Skylder egenandel", category="admin")):
        response = await world.http.post(
            f"/{resource['resourceType']}", json=resource, headers=world.hospital
        )
        assert response.status_code == 201, response.text
    assert await entries(world, "Procedure") == []
    assert await entries(world, "Flag") == []


async def test_each_source_recorded_in_an_entry_has_a_provenance(world: World) -> None:
    first = await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    second = await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.gp)
    assert first.status_code == second.status_code == 201, second.text
    [entry] = await entries(world)
    found = await world.http.get(f"/Provenance?target=AllergyIntolerance/{entry['id']}", headers=world.system)
    assert found.status_code == 200, found.text
    provenances = [e["resource"] for e in found.json()["entry"]]
    by_source = {p["entity"][0]["what"]["reference"]: p for p in provenances}
    assert set(by_source) == {
        f"AllergyIntolerance/{first.json()['id']}",
        f"AllergyIntolerance/{second.json()['id']}",
    }
    created = by_source[f"AllergyIntolerance/{first.json()['id']}"]
    assert created["activity"]["coding"][0]["code"] == "CREATE"
    assert {"reference": "Patient/kari"} in created["target"]
    [author] = [a for a in created["agent"] if a["type"]["coding"][0]["code"] == "author"]
    assert author["onBehalfOf"]["identifier"] == {"system": ORGNR_SYSTEM, "value": HOSPITAL_ORGNR}
    merged = by_source[f"AllergyIntolerance/{second.json()['id']}"]
    assert merged["activity"]["coding"][0]["code"] == "UPDATE"
    # the GP, with a care relation, reads the provenance of Kari's core journal; a stranger organisation
    # and another citizen do not
    assert (await world.http.get(f"/Provenance/{created['id']}", headers=world.gp)).status_code == 200
    for stranger in (world.other, world.nils):
        refused = await world.http.get(f"/Provenance/{created['id']}", headers=stranger)
        assert refused.status_code == 403, refused.text
    # a search naming Kari: refused for the organisation without a care relation; a citizen's search is
    # limited to her own record, so another citizen finds nothing
    by_org = await world.http.get("/Provenance?patient=Patient/kari", headers=world.other)
    assert by_org.status_code == 403, by_org.text
    by_citizen = await world.http.get("/Provenance?patient=Patient/kari", headers=world.nils)
    assert by_citizen.status_code == 200, by_citizen.text
    assert by_citizen.json()["total"] == 0
