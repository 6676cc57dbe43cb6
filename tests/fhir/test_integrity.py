"""Referential integrity on write (both databases): a local reference must name a resource that exists."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from app.fhir.interactions.integrity import local_references
from tests.conftest import BASE
from tests.fhir.bundles import put_each
from tests.fhir.fixtures import FHIR_JSON, observation, patient


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> httpx.Response:
    url = f"/{resource['resourceType']}/{resource['id']}"
    return await client.put(url, content=orjson.dumps(resource), headers=FHIR_JSON)


def test_local_references_are_this_servers_only() -> None:
    resource = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/kari"},
        "performer": [
            {"reference": f"{BASE}/Practitioner/gp"},
            {"reference": "https://other.example/fhir/Patient/1"},
        ],
        "focus": [
            {"reference": "#contained"},
            {"reference": "urn:uuid:0c1f1d6c-7a2b-4c1e-9d5e-1f2e3d4c5b6a"},
        ],
        "derivedFrom": [{"reference": "Observation/o1/_history/2"}],
        "extension": [{"url": "http://example.org/x", "valueReference": {"reference": "Encounter/e1"}}],
        "contained": [
            {"resourceType": "Patient", "id": "contained", "link": [{"other": {"reference": "Patient/x"}}]}
        ],
    }
    found = local_references(resource, "o9", BASE)
    assert sorted(found) == [
        ("Encounter", "e1"),
        ("Observation", "o1"),
        ("Patient", "kari"),
        ("Practitioner", "gp"),
    ]
    assert found[("Patient", "kari")] == "Observation/o9 (Observation.subject)"
    assert found[("Encounter", "e1")] == "Observation/o9 (Observation.extension.valueReference)"


async def test_a_reference_to_nothing_is_422_and_nothing_is_stored(client: httpx.AsyncClient) -> None:
    refused = await client.post(
        "/Observation", content=orjson.dumps(observation("Patient/nobody")), headers=FHIR_JSON
    )
    assert refused.status_code == 422, refused.text
    issue = refused.json()["issue"][0]
    assert issue["code"] == "not-found"
    assert "Patient/nobody does not exist" in issue["diagnostics"]
    assert "Observation.subject" in issue["diagnostics"]
    assert (await client.get("/Observation")).json()["total"] == 0
    # With the patient there, the same create goes through; an update may not point it at nothing.
    assert (await put(client, {**patient(), "id": "kari"})).status_code == 201
    created = await client.post(
        "/Observation", content=orjson.dumps(observation("Patient/kari")), headers=FHIR_JSON
    )
    assert created.status_code == 201, created.text
    moved = {**created.json(), "subject": {"reference": f"{BASE}/Patient/nobody"}}
    assert (await put(client, moved)).status_code == 422
    assert (await client.get(f"/Observation/{moved['id']}")).json()["meta"]["versionId"] == "1"
    # Not this server's to check: another server's, a contained one.
    elsewhere = observation("https://other.example/fhir/Patient/1")
    assert (
        await client.post("/Observation", content=orjson.dumps(elsewhere), headers=FHIR_JSON)
    ).status_code == 201


async def test_a_deleted_target_is_no_target(client: httpx.AsyncClient) -> None:
    assert (await put(client, {**patient(), "id": "gone"})).status_code == 201
    assert (await client.delete("/Patient/gone")).status_code == 200
    refused = await client.post(
        "/Observation", content=orjson.dumps(observation("Patient/gone")), headers=FHIR_JSON
    )
    assert refused.status_code == 422, refused.text


async def test_a_transaction_may_refer_forward_and_is_refused_whole(client: httpx.AsyncClient) -> None:
    obs = {**observation("Patient/later"), "id": "o1"}
    forward = put_each(obs, {**patient(), "id": "later"})  # the Patient comes after the Observation
    assert (await client.post("/", content=orjson.dumps(forward), headers=FHIR_JSON)).status_code == 200
    dangling = put_each({**patient(), "id": "p2"}, {**observation("Patient/nobody"), "id": "o2"})
    refused = await client.post("/", content=orjson.dumps(dangling), headers=FHIR_JSON)
    assert refused.status_code == 422, refused.text
    assert "Patient/nobody" in refused.text
    assert (await client.get("/Patient/p2")).status_code == 404  # nothing of it stored
    # In a batch each entry stands alone.
    batch = put_each({**patient(), "id": "p3"}, {**observation("Patient/nobody"), "id": "o3"}, kind="batch")
    reply = (await client.post("/", content=orjson.dumps(batch), headers=FHIR_JSON)).json()
    assert [e["response"]["status"][:3] for e in reply["entry"]] == ["201", "422"]


async def test_the_setting_relaxes_it_for_bulk_loads(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.fhir.referential_integrity = False
    try:
        body = orjson.dumps(observation("Patient/arrives-later"))
        assert (await client.post("/Observation", content=body, headers=FHIR_JSON)).status_code == 201
    finally:
        app.state.fhir.referential_integrity = True


def test_uri_elements_named_reference_are_not_references() -> None:
    # Expression.reference is a uri beside keys a Reference lacks; it names no resource of this server.
    plan = {
        "resourceType": "PlanDefinition",
        "status": "active",
        "action": [
            {
                "condition": [
                    {
                        "kind": "applicability",
                        "expression": {"language": "text/cql", "reference": "Library/x"},
                    }
                ]
            }
        ],
    }
    assert local_references(plan, "p1", BASE) == {}
