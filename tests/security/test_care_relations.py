"""Where a care relation (tjenstlig behov) comes from, how long emergency access lasts, and what the
audit trail records about the stated access basis and source system."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update

from app.security.tables import access_fact, emergency_access
from tests.security.helpers import World, ids
from tests.security.scenario import OTHER_CLINIC_ORGNR, ref

NILS_BP = "/Observation/nils-bp"


def relation_sources() -> list[tuple[str, dict[str, Any]]]:
    other_org, other_doctor = ref("Organization/other-clinic"), ref("Practitioner/other-doctor")
    nils = ref("Patient/nils")
    return [
        (
            "encounter",
            {
                "resourceType": "Encounter",
                "id": "rel",
                "status": "arrived",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": nils,
                "participant": [{"individual": other_doctor}],
            },
        ),
        (
            "episode",
            {
                "resourceType": "EpisodeOfCare",
                "id": "rel",
                "status": "active",
                "patient": nils,
                "managingOrganization": other_org,
            },
        ),
        (
            "care-team",
            {
                "resourceType": "CareTeam",
                "id": "rel",
                "status": "active",
                "subject": nils,
                "participant": [{"member": other_org}],
            },
        ),
        (
            "referral-task",
            {
                "resourceType": "Task",
                "id": "rel",
                "status": "accepted",
                "intent": "order",
                "for": nils,
                "owner": other_org,
            },
        ),
        (
            "owner-by-identifier",
            {
                "resourceType": "Task",
                "id": "rel",
                "status": "received",
                "intent": "order",
                "for": nils,
                "owner": {
                    "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": OTHER_CLINIC_ORGNR}
                },
            },
        ),
    ]


@pytest.mark.parametrize(
    ("label", "source"), relation_sources(), ids=[label for label, _ in relation_sources()]
)
async def test_each_kind_of_care_relation_gives_access(
    world: World, label: str, source: dict[str, Any]
) -> None:
    assert (await world.http.get(NILS_BP, headers=world.other)).status_code == 403
    assert (await world.put(source)).status_code == 201
    assert (await world.http.get(NILS_BP, headers=world.other)).status_code == 200, label
    # Ending the relation ends the access (a cancelled encounter, a completed task, ...).
    ended = {**source, "status": "inactive" if source["resourceType"] == "CareTeam" else "cancelled"}
    assert (await world.put(ended)).status_code == 200
    assert (await world.http.get(NILS_BP, headers=world.other)).status_code == 403


async def test_a_finished_encounter_counts_for_a_while_then_not(world: World) -> None:
    encounter = relation_sources()[0][1]
    recent = {**encounter, "status": "finished", "period": {"start": "2026-01-01", "end": "2099-01-01"}}
    assert (await world.put(recent)).status_code == 201
    assert (await world.http.get(NILS_BP, headers=world.other)).status_code == 200
    long_ago = {**encounter, "status": "finished", "period": {"start": "2001-01-01", "end": "2001-01-02"}}
    assert (await world.put(long_ago)).status_code == 200
    assert (await world.http.get(NILS_BP, headers=world.other)).status_code == 403


async def test_emergency_access_expires(world: World, secure_app: FastAPI) -> None:
    emergency = {**world.other, "nhn-emergency-reason": "Akutt"}
    assert (await world.http.get(NILS_BP, headers=emergency)).status_code == 200
    assert (await world.http.get(NILS_BP, headers=world.other)).status_code == 200
    async with secure_app.state.database.engine.begin() as conn:
        await conn.execute(update(emergency_access).values(expires_at=emergency_access.c.granted_at))
    assert (await world.http.get(NILS_BP, headers=world.other)).status_code == 403


async def test_the_audit_records_access_basis_and_source_system(world: World) -> None:
    headers = {**world.gp, "nhn-access-basis": "care-relation", "nhn-source-system": "DIPS Arena 23.1"}
    assert (await world.http.get("/Observation/kari-bp", headers=headers)).status_code == 200
    events = await world.audit("patient=Patient/kari&action=R")
    text = str(events)
    assert "DIPS Arena 23.1" in text
    assert "care-relation" in text


async def test_searches_are_filtered_and_audited(world: World) -> None:
    found = await world.http.get("/Observation?_total=accurate", headers=world.gp)
    # The GP has Kari (regular GP via the role) and the children (via the office), not Nils.
    assert ids(found.json()) == {"Observation/kari-bp", "Observation/ola-temp", "Observation/tuva-temp"}
    assert found.json()["total"] == 3
    events = await world.audit("action=E&patient=Patient/ola")
    assert events
    assert any(ent.get("query") for e in events for ent in e["entity"])


async def test_reindex_rebuilds_access_facts_and_is_for_system_clients(
    world: World, secure_app: FastAPI
) -> None:
    assert (await world.http.post("/$reindex", headers=world.gp)).status_code == 403
    async with secure_app.state.database.engine.begin() as conn:
        await conn.execute(delete(access_fact))
    assert (await world.http.get("/Observation/kari-bp", headers=world.gp)).status_code == 403
    assert (await world.http.post("/$reindex", headers=world.system)).status_code == 200
    assert (await world.http.get("/Observation/kari-bp", headers=world.gp)).status_code == 200


async def test_capability_statement_advertises_smart(secure_client: httpx.AsyncClient) -> None:
    statement = (await secure_client.get("/metadata")).json()
    service = statement["rest"][0]["security"]["service"][0]["coding"][0]
    assert service["code"] == "SMART-on-FHIR"
