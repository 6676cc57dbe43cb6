"""Accesses that are allowed but flagged for follow-up (issue 11, holes 9 and 11): data reached through
emergency access by a search that does not name the patient, and a care relation that personnel declare
themselves (and its deletion, which must not erase that it existed)."""

from __future__ import annotations

from typing import Any

from app.security.audit import AUDIT_FLAG_SYSTEM
from tests.security.helpers import World, ids
from tests.security.scenario import ref

EMERGENCY = f"_tag={AUDIT_FLAG_SYSTEM}|emergency-access"
SELF_DECLARED = f"_tag={AUDIT_FLAG_SYSTEM}|self-declared-care-relation"
DELETED = f"_tag={AUDIT_FLAG_SYSTEM}|care-relation-deleted"


# -- hole 9: emergency access reached by a search that does not name the patient -------------------------
async def test_a_search_reaching_data_through_emergency_access_is_flagged(world: World) -> None:
    emergency = {**world.other, "nhn-emergency-reason": "Akutt"}
    assert (await world.http.get("/Patient/kari", headers=emergency)).status_code == 200
    found = await world.http.get("/Observation?code:text=Blodtrykk", headers=world.other)
    assert found.status_code == 200
    assert ids(found.json()) == {"Observation/kari-bp"}  # Kari's, through the grant; not Nils's
    flagged = await world.audit(f"{EMERGENCY}&action=E&patient=Patient/kari")
    assert len(flagged) == 1
    assert flagged[0]["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"


async def test_searches_through_care_relations_are_not_flagged(world: World) -> None:
    # The GP reaches Kari's data through her care relation: nothing to follow up.
    found = await world.http.get("/Observation?code:text=Blodtrykk", headers=world.gp)
    assert ids(found.json()) == {"Observation/kari-bp"}
    # The hospital holds an emergency grant for Nils, but this search returns only Kari's data.
    emergency = {**world.hospital, "nhn-emergency-reason": "Akutt"}
    assert (await world.http.get("/Patient/nils", headers=emergency)).status_code == 200
    kari_only = await world.http.get("/Observation?subject=Patient/kari", headers=world.hospital)
    assert ids(kari_only.json()) == {"Observation/kari-bp"}
    assert await world.audit(f"{EMERGENCY}&action=E") == []


# -- hole 11: self-declared care relations ---------------------------------------------------------------
def encounter(res_id: str, patient: str, provider: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": res_id,
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": ref(f"Patient/{patient}"),
        "serviceProvider": ref(f"Organization/{provider}"),
    }


async def test_a_self_declared_care_relation_works_is_flagged_and_outlives_its_deletion(world: World) -> None:
    assert (await world.http.get("/Observation/nils-bp", headers=world.other)).status_code == 403
    # Care starts with an Encounter naming one's own organisation: allowed at once, and flagged.
    assert (await world.put(encounter("nils-visit", "nils", "other-clinic"), world.other)).status_code == 201
    assert (await world.http.get("/Observation/nils-bp", headers=world.other)).status_code == 200
    (created,) = await world.audit(f"{SELF_DECLARED}&patient=Patient/nils")
    assert created["action"] == "C"
    assert any(
        e.get("what", {}).get("reference") == "Encounter/nils-visit/_history/1" for e in created["entity"]
    )
    # Deleting it ends the access, not the record that the relation existed.
    assert (await world.http.delete("/Encounter/nils-visit", headers=world.other)).status_code == 200
    assert (await world.http.get("/Observation/nils-bp", headers=world.other)).status_code == 403
    (deleted,) = await world.audit(f"{DELETED}&patient=Patient/nils")
    assert deleted["action"] == "D"
    history = await world.http.get("/Encounter/nils-visit/_history", headers=world.system)
    assert history.status_code == 200
    versions = [e.get("resource", {}) for e in history.json()["entry"]]
    assert any(v.get("serviceProvider") == ref("Organization/other-clinic") for v in versions)


async def test_care_within_an_existing_relation_is_not_flagged(world: World) -> None:
    # The GP already has Kari in her care; a new consultation, and the hospital's updated admission, are
    # ordinary care.
    assert (await world.put(encounter("kari-gp-visit", "kari", "gp-office"), world.gp)).status_code == 201
    admission = (await world.http.get("/Encounter/kari-admission", headers=world.hospital)).json()
    admission["status"] = "onleave"
    assert (await world.put(admission, world.hospital)).status_code == 200
    # A system client's Encounter is not personnel declaring their own care.
    assert (await world.put(encounter("nils-system", "nils", "hospital"))).status_code == 201
    assert await world.audit(SELF_DECLARED) == []
    # Deleting an Encounter that gave a care relation is flagged, whoever declared it.
    assert (await world.http.delete("/Encounter/kari-gp-visit", headers=world.gp)).status_code == 200
    assert len(await world.audit(f"{DELETED}&patient=Patient/kari")) == 1
