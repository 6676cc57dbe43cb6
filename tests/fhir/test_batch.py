"""batch Bundles: independent entries, each its own unit of work; errors stay in their entry (both databases)."""

from __future__ import annotations

import httpx
import orjson
from fastapi import FastAPI

from app.main import create_app
from app.resources.no_basis.identifiers import ORGNR_SYSTEM
from tests import databases
from tests.conftest import BASE, make_settings
from tests.fhir.bundles import bundle, call, location_id, organization, post, put, send, statuses, urn
from tests.fhir.fixtures import FHIR_JSON, observation, patient


async def test_one_bad_entry_does_not_stop_the_others(client: httpx.AsyncClient) -> None:
    existing = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    bad = {**observation(), "valueQuantity": {"value": "many"}}
    response = await send(
        client,
        bundle(
            post(patient(given="Åse")),
            post(bad),
            put(f"Patient/{existing['id']}", {**existing, "gender": "male"}),
            put("Patient/other-id", observation()),
            call("GET", "Patient/missing"),
            {"resource": patient()},
            call("DELETE", f"Patient/{existing['id']}", if_match='W/"1"'),
            kind="batch",
        ),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "batch-response"
    assert statuses(response) == [
        "201 Created",
        "400 Bad Request",
        "200 OK",
        "400 Bad Request",
        "404 Not Found",
        "400 Bad Request",
        "412 Precondition Failed",
    ]
    entries = body["entry"]
    bad_outcome = entries[1]["response"]["outcome"]
    assert bad_outcome["resourceType"] == "OperationOutcome"
    assert bad_outcome["issue"][0]["expression"] == ["Observation.valueQuantity.value"]
    assert "resource" not in entries[1]
    assert entries[5]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[5].request"]
    assert "version 2" in entries[6]["response"]["outcome"]["issue"][0]["diagnostics"]
    created = entries[0]["resource"]
    assert (await client.get(f"/Patient/{created['id']}")).json()["name"][0]["given"] == ["Åse"]
    assert (await client.get(f"/Patient/{existing['id']}")).json()["gender"] == "male"
    assert (await client.get("/Observation/_history")).json()["total"] == 0


async def test_conditional_creates_in_a_batch(client: httpx.AsyncClient) -> None:
    criteria = f"identifier={ORGNR_SYSTEM}|974760673"
    org = organization("974760673", ORGNR_SYSTEM)
    response = await send(
        client,
        bundle(post(org, urn(), criteria), post(org, urn(), criteria), kind="batch"),
    )
    assert statuses(response) == ["201 Created", "200 OK"]
    first, second = response.json()["entry"]
    assert location_id(first) == location_id(second)
    assert (await client.get("/Organization/_history")).json()["total"] == 1


async def test_batch_does_not_resolve_references_between_entries(client: httpx.AsyncClient) -> None:
    pat = urn()
    response = await send(client, bundle(post(patient(), pat), post(observation(pat)), kind="batch"))
    assert statuses(response) == ["201 Created", "201 Created"]
    assert response.json()["entry"][1]["resource"]["subject"]["reference"] == pat


async def test_batch_reads_and_deletes(client: httpx.AsyncClient) -> None:
    existing = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    url = f"Patient/{existing['id']}"
    response = await send(
        client,
        bundle(
            call("GET", url),
            call("DELETE", url),
            call("GET", f"{url}/_history/1"),
            call("GET", f"{url}/_history"),
            call("GET", url),
            call("GET", "Patient?identifier=x"),
            kind="batch",
        ),
        prefer="minimal",
    )
    assert statuses(response) == [
        "200 OK",
        "204 No Content",
        "200 OK",
        "200 OK",
        "410 Gone",
        "200 OK",
    ]
    entries = response.json()["entry"]
    assert entries[0]["resource"]["id"] == existing["id"]
    assert entries[0]["response"]["etag"] == 'W/"1"'
    assert entries[1]["response"]["etag"] == 'W/"2"'
    assert entries[2]["resource"]["meta"]["versionId"] == "1"
    assert entries[3]["resource"]["total"] == 2
    assert entries[5]["resource"]["type"] == "searchset"
    assert entries[5]["resource"]["total"] == 0


async def test_bundle_body_has_the_same_size_limit(
    session_databases: dict[str, databases.TestDatabase],
) -> None:
    small: FastAPI = create_app(make_settings(session_databases["sqlite"].url, max_body_bytes=2000))
    transport = httpx.ASGITransport(app=small)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            big = bundle(*(post(patient()) for _ in range(20)), kind="batch")
            response = await http.post("/", content=orjson.dumps(big), headers=FHIR_JSON)
            assert response.status_code == 413
            assert response.json()["resourceType"] == "OperationOutcome"
    finally:
        await small.state.database.dispose()
