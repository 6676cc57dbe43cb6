"""`GET /Patient/{id}/$summary` through the REST API on SQLite and PostgreSQL: the IPS-shaped document,
who may have it, what a reservation hides, and that the same data gives the same document."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import orjson

from app.resources.core_journal.classify import source_references
from app.resources.core_journal.codes import is_entry
from app.resources.core_journal.summary import SECTIONS
from app.resources.no_basis.identifiers import FNR_SYSTEM
from app.security.audit import SERVICE_SYSTEM
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
from tests.resources.core_journal.test_flow_http import organisations
from tests.resources.medication_list.builders import metformin
from tests.resources.medication_list.test_operations_http import reconcile_body
from tests.security.helpers import World
from tests.security.scenario import (
    GP_HPR,
    GP_OFFICE_ORGNR,
    HOSPITAL_ORGNR,
    KARI_FNR,
    NILS_FNR,
    ref,
    reservation,
)

URL = "/Patient/kari/$summary"
IPS_ORDER = ["48765-2", "104605-1", "11450-4", "10160-0", "47519-4", "11369-6", "46264-8", "46240-8"]


def section(doc: dict[str, Any], loinc: str) -> list[dict[str, Any]]:
    """The resources a section references, from the document's entries."""
    by_ref = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in doc["entry"]}
    [composition] = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Composition"]
    [found] = [s for s in composition["section"] if s["code"]["coding"][0]["code"] == loinc]
    return [by_ref[r["reference"]] for r in found.get("entry", [])]


async def summary(world: World, who: dict[str, str], url: str = URL) -> dict[str, Any]:
    response = await world.http.get(url, headers=who)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


async def other_sections(world: World) -> None:
    """A medicine, a vaccine, an implant and a recent and an old encounter, written by the seeding client."""
    recent = (date.today() - timedelta(days=40)).isoformat()
    old = (date.today() - timedelta(days=5 * 365)).isoformat()
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "MedicationStatement",
            "id": "kari-levaxin",
            "status": "active",
            "medicationCodeableConcept": {"text": "Levaxin 50 mikrog"},
            "subject": ref("Patient/kari"),
        },
        {
            "resourceType": "MedicationStatement",
            "id": "kari-old-course",
            "status": "completed",
            "medicationCodeableConcept": {"text": "Amoxicillin"},
            "subject": ref("Patient/kari"),
        },
        {
            "resourceType": "Immunization",
            "id": "kari-tbe",
            "status": "completed",
            "vaccineCode": {"text": "TBE-vaksine"},
            "patient": ref("Patient/kari"),
            "occurrenceDateTime": recent,
        },
        {
            "resourceType": "Device",
            "id": "kari-pacemaker",
            "deviceName": [{"name": "Pacemaker", "type": "user-friendly-name"}],
            "patient": ref("Patient/kari"),
        },
        *(
            {
                "resourceType": "Encounter",
                "id": f"kari-visit-{name}",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": ref("Patient/kari"),
                "serviceProvider": ref("Organization/gp-office"),
                "period": {"start": start, "end": start},
            }
            for name, start in (("recent", recent), ("old", old))
        ),
    ]
    for resource in resources:
        assert (await world.put(resource)).status_code == 201


async def test_the_gp_sees_the_hospitals_critical_allergy_with_its_source(world: World) -> None:
    source = await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    assert source.status_code == 201
    await other_sections(world)
    doc = await summary(world, world.gp)
    assert doc["type"] == "document"
    composition = doc["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["type"]["coding"][0]["code"] == "60591-5"
    assert [s["code"]["coding"][0]["code"] for s in composition["section"]] == IPS_ORDER
    assert [s.code for s in SECTIONS] == IPS_ORDER
    [entry] = section(doc, "48765-2")
    assert is_entry(entry)
    assert source_references(entry) == {f"AllergyIntolerance/{source.json()['id']}"}  # folded, listed once
    assert organisations(entry) == [HOSPITAL_ORGNR]
    assert [m["id"] for m in section(doc, "10160-0")] == ["kari-levaxin"]
    assert [i["id"] for i in section(doc, "11369-6")] == ["kari-tbe"]
    assert [d["id"] for d in section(doc, "46264-8")] == ["kari-pacemaker"]
    assert [e["id"] for e in section(doc, "46240-8")] == ["kari-visit-recent"]
    empty = [s for s in composition["section"] if s["code"]["coding"][0]["code"] == "11450-4"]
    assert empty[0]["emptyReason"]["coding"][0]["code"] == "unavailable"


async def test_two_sources_show_as_one_entry_critical_first(world: World) -> None:
    for who in (world.hospital, world.gp):
        assert (
            await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=who)
        ).status_code == 201
    low = allergy(PEANUT, "low")
    assert (await world.http.post("/AllergyIntolerance", json=low, headers=world.gp)).status_code == 201
    allergies = section(await summary(world, world.gp), "48765-2")
    assert [is_entry(a) for a in allergies] == [True, False]  # the critical entry first, then the rest
    assert sorted(organisations(allergies[0])) == sorted([HOSPITAL_ORGNR, GP_OFFICE_ORGNR])


async def test_the_citizen_sees_her_own_summary_and_no_one_elses(world: World) -> None:
    assert (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).status_code == 201
    [entry] = section(await summary(world, world.kari), "48765-2")
    assert is_entry(entry)
    assert (await world.http.get("/Patient/nils/$summary", headers=world.kari)).status_code == 403


async def test_an_organisation_without_a_care_relation_is_refused(world: World) -> None:
    assert (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).status_code == 201
    refused = await world.http.get(URL, headers=world.other)
    assert refused.status_code == 403
    assert "Penicillin" not in refused.text


async def test_a_reservation_hides_core_journal_content_except_the_organisations_own(world: World) -> None:
    hospital_allergy = await world.http.post(
        "/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital
    )
    gp_condition = await world.http.post("/Condition", json=condition(ADDISON), headers=world.gp)
    assert hospital_allergy.status_code == gp_condition.status_code == 201
    assert (await world.put(reservation("kari"), world.kari)).status_code == 201

    at_gp = await summary(world, world.gp)
    assert section(at_gp, "48765-2") == []  # the hospital's allergy: hidden from the GP
    assert [c["id"] for c in section(at_gp, "11450-4")] == [gp_condition.json()["id"]]  # its own stands in
    at_hospital = await summary(world, world.hospital)
    assert [a["id"] for a in section(at_hospital, "48765-2")] == [hospital_allergy.json()["id"]]
    assert section(at_hospital, "11450-4") == []
    assert "Addison" not in orjson.dumps(at_hospital).decode()
    # Kari's own view is not limited by her reservation.
    at_kari = await summary(world, world.kari)
    assert [is_entry(a) for a in section(at_kari, "48765-2")] == [True]
    # the entries' Provenance (which source, organisation, author) is hidden with them
    for who, expected in ((world.gp, 0), (world.hospital, 0), (world.kari, 2)):
        found = await world.http.get("/Provenance?patient=Patient/kari", headers=who)
        assert found.status_code == 200, found.text
        assert len(found.json().get("entry", [])) == expected


def stable(doc: dict[str, Any]) -> bytes:
    """The document without what differs between two calls: the ids and timestamps of this document."""
    doc_id = doc["id"]
    text = orjson.dumps(doc).decode().replace(doc_id, "ID").replace(doc["timestamp"], "NOW")
    return text.encode()


async def test_the_same_data_gives_the_same_document(world: World) -> None:
    for who in (world.hospital, world.gp):
        assert (
            await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=who)
        ).status_code == 201
    await other_sections(world)
    first, second = await summary(world, world.gp), await summary(world, world.gp)
    assert first["id"] != second["id"]
    assert stable(first) == stable(second)


async def test_every_read_of_a_summary_is_audited_as_the_callers(world: World) -> None:
    assert (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).status_code == 201
    await other_sections(world)
    await summary(world, world.gp)
    events = await world.audit("patient=Patient/kari")
    by_gp = [
        e["subtype"][0]["code"]
        for e in events
        for a in e["agent"]
        if a.get("requestor") and a.get("who", {}).get("identifier", {}).get("value") == GP_HPR
    ]
    # the Patient read, and one search per section, the medicines' after one for the patient's medication
    # list (none yet). Device is not in R4's Patient compartment: its search names the patient in the
    # audit through what it found (an empty one would not).
    assert sorted(by_gp) == ["read", *["search-type"] * (len(SECTIONS) + 1)]
    services = [
        e["subtype"][1:]
        for e in events
        for a in e["agent"]
        if a.get("requestor") and a.get("who", {}).get("identifier", {}).get("value") == GP_HPR
    ]
    core_journal = {"system": SERVICE_SYSTEM, "code": "core-journal", "display": "Kjernejournal"}
    assert services == [[core_journal]] * len(by_gp)  # every access, as core-journal access


async def test_a_read_outside_the_summary_is_not_core_journal_access(world: World) -> None:
    response = await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    assert response.status_code == 201
    assert (await world.http.get("/AllergyIntolerance?patient=kari", headers=world.gp)).status_code == 200
    events = await world.audit("patient=Patient/kari")
    assert events
    assert all(len(e["subtype"]) == 1 for e in events)


async def test_alerts_ongoing_treatments_and_implants_show_as_core_journal_entries(world: World) -> None:
    for resource in (
        implant(PACEMAKER),
        treatment(DIALYSIS),
        treatment({**DIALYSIS, "code": "80146002", "display": "Appendectomy"}, "completed"),
        alert("Voldsrisiko"),
    ):
        response = await world.http.post(
            f"/{resource['resourceType']}", json=resource, headers=world.hospital
        )
        assert response.status_code == 201, response.text
    doc = await summary(world, world.gp)
    [flag] = section(doc, "104605-1")
    [procedure] = section(doc, "47519-4")  # the completed appendectomy is history, not ongoing treatment
    [device] = section(doc, "46264-8")
    assert all(is_entry(r) for r in (flag, procedure, device))
    assert procedure["code"]["coding"][0]["code"] == DIALYSIS["code"]
    assert organisations(device) == [HOSPITAL_ORGNR]


async def test_medicines_come_from_the_medication_list_once_it_exists(world: World) -> None:
    await other_sections(world)  # an active MedicationStatement outside any list
    doc = await summary(world, world.gp)
    assert [m["id"] for m in section(doc, "10160-0")] == ["kari-levaxin"]  # no list yet: active statements
    body = reconcile_body(metformin(), apply=True)
    applied = await world.http.post(
        "/Patient/kari/$reconcile", json=body, headers={**world.gp, "If-Match": 'W/"0"'}
    )
    assert applied.status_code == 200, applied.text
    doc = await summary(world, world.gp)
    [medicine] = section(doc, "10160-0")
    assert medicine["medicationCodeableConcept"]["text"] == metformin()["medicationCodeableConcept"]["text"]


async def test_the_type_level_form_finds_the_patient_by_identifier(world: World) -> None:
    """IPS's `Patient/$summary?identifier=`: the same document as the instance's, for a patient the caller
    may find; one the caller may not see is not found (nothing told), and the identifier is required."""
    assert (
        await world.http.post("/AllergyIntolerance", json=allergy(PENICILLIN), headers=world.hospital)
    ).status_code == 201
    by_fnr = f"/Patient/$summary?identifier={FNR_SYSTEM}|{KARI_FNR}"
    doc = await summary(world, world.gp, by_fnr)
    [composition] = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Composition"]
    assert composition["subject"]["reference"].endswith("Patient/kari")
    [entry] = section(doc, "48765-2")
    assert is_entry(entry)
    unknown = await world.http.get(f"/Patient/$summary?identifier={FNR_SYSTEM}|{NILS_FNR}0", headers=world.gp)
    assert unknown.status_code == 404
    hidden = await world.http.get(by_fnr, headers=world.other)  # no care relation: no such patient to it
    assert hidden.status_code == 404
    assert "Penicillin" not in hidden.text
    other_citizen = await world.http.get(by_fnr, headers=world.nils)  # another citizen: not found either
    assert other_citizen.status_code == 404
    assert "Penicillin" not in other_citizen.text
    for bad in ("/Patient/$summary", f"/Patient/$summary?identifier={FNR_SYSTEM}|"):
        missing = await world.http.get(bad, headers=world.gp)
        assert missing.status_code == 400
        assert missing.json()["resourceType"] == "OperationOutcome"
