"""create, read, vread, update, update-as-create and delete through the REST API (both databases)."""

from __future__ import annotations

import httpx
import orjson

from tests.conftest import BASE
from tests.fhir.fixtures import FHIR_JSON, observation, patient


async def create(client: httpx.AsyncClient, body: dict[str, object]) -> httpx.Response:
    return await client.post(f"/{body['resourceType']}", content=orjson.dumps(body), headers=FHIR_JSON)


async def test_create_assigns_id_version_and_headers(client: httpx.AsyncClient) -> None:
    body = patient()
    body["id"] = "client-chosen"  # ignored on create (R4 3.1.0.7)
    response = await create(client, body)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] != "client-chosen"
    assert created["meta"]["versionId"] == "1"
    assert created["meta"]["lastUpdated"].endswith("Z")
    assert created["name"] == body["name"]
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == f"{BASE}/Patient/{created['id']}/_history/1"
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")


async def test_read_returns_exactly_the_stored_bytes(client: httpx.AsyncClient) -> None:
    created = await create(client, patient(given="Åse"))
    res_id = created.json()["id"]
    response = await client.get(f"/Patient/{res_id}")
    assert response.status_code == 200
    assert response.content == created.content
    assert response.json()["name"][0]["given"] == ["Åse"]
    assert response.headers["etag"] == 'W/"1"'


async def test_update_makes_a_new_version_and_vread_reads_old_ones(client: httpx.AsyncClient) -> None:
    created = (await create(client, patient())).json()
    res_id = created["id"]
    changed = {**created, "gender": "other"}
    response = await client.put(f"/Patient/{res_id}", content=orjson.dumps(changed), headers=FHIR_JSON)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert response.headers["location"].endswith(f"/Patient/{res_id}/_history/2")

    v1 = await client.get(f"/Patient/{res_id}/_history/1")
    assert v1.status_code == 200
    assert v1.json()["gender"] == "female"
    assert v1.headers["etag"] == 'W/"1"'
    v2 = await client.get(f"/Patient/{res_id}/_history/2")
    assert v2.json()["gender"] == "other"
    assert (await client.get(f"/Patient/{res_id}/_history/3")).status_code == 404
    assert (await client.get(f"/Patient/{res_id}/_history/abc")).status_code == 404


async def test_update_with_unchanged_content_keeps_the_version(client: httpx.AsyncClient) -> None:
    created = (await create(client, patient())).json()
    again = await client.put(f"/Patient/{created['id']}", content=orjson.dumps(created), headers=FHIR_JSON)
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "1"


async def test_update_as_create_with_client_id(client: httpx.AsyncClient) -> None:
    body = {**patient(), "id": "kari-nordmann"}
    response = await client.put("/Patient/kari-nordmann", content=orjson.dumps(body), headers=FHIR_JSON)
    assert response.status_code == 201
    assert response.json()["id"] == "kari-nordmann"
    assert response.json()["meta"]["versionId"] == "1"
    assert (await client.get("/Patient/kari-nordmann")).status_code == 200


async def test_update_needs_matching_id_in_body(client: httpx.AsyncClient) -> None:
    no_id = await client.put("/Patient/a", content=orjson.dumps(patient()), headers=FHIR_JSON)
    assert no_id.status_code == 400
    assert no_id.json()["issue"][0]["expression"] == ["Patient.id"]
    other = await client.put("/Patient/a", content=orjson.dumps({**patient(), "id": "b"}), headers=FHIR_JSON)
    assert other.status_code == 400
    assert "does not match" in other.json()["issue"][0]["diagnostics"]
    wrong_type = await client.put(
        "/Observation/a", content=orjson.dumps({**patient(), "id": "a"}), headers=FHIR_JSON
    )
    assert wrong_type.status_code == 400
    assert (await client.get("/Patient/a")).status_code == 404


async def test_invalid_id_in_url_is_rejected(client: httpx.AsyncClient) -> None:
    long_id = "x" * 65
    body = {**patient(), "id": long_id}
    response = await client.put(f"/Patient/{long_id}", content=orjson.dumps(body), headers=FHIR_JSON)
    assert response.status_code == 400


async def test_delete_then_read_is_gone_and_delete_is_idempotent(client: httpx.AsyncClient) -> None:
    res_id = (await create(client, patient())).json()["id"]
    first = await client.delete(f"/Patient/{res_id}")
    assert first.status_code == 200
    assert first.json()["resourceType"] == "OperationOutcome"
    assert first.headers["etag"] == 'W/"2"'
    gone = await client.get(f"/Patient/{res_id}")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    second = await client.delete(f"/Patient/{res_id}")
    assert second.status_code == 200
    assert second.headers["etag"] == 'W/"2"'  # no new version for a repeated delete
    history = (await client.get(f"/Patient/{res_id}/_history")).json()
    assert history["total"] == 2
    assert (await client.get(f"/Patient/{res_id}/_history/2")).status_code == 410
    assert (await client.get(f"/Patient/{res_id}/_history/1")).status_code == 200


async def test_delete_unknown_resource_reports_nothing_to_delete(client: httpx.AsyncClient) -> None:
    response = await client.delete("/Patient/never-existed")
    assert response.status_code == 200
    assert "nothing to delete" in response.json()["issue"][0]["diagnostics"]
    minimal = await client.delete("/Patient/never-existed", headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 204
    assert minimal.content == b""


async def test_update_after_delete_revives_the_resource(client: httpx.AsyncClient) -> None:
    created = (await create(client, patient())).json()
    await client.delete(f"/Patient/{created['id']}")
    revived = await client.put(f"/Patient/{created['id']}", content=orjson.dumps(created), headers=FHIR_JSON)
    assert revived.status_code == 201
    assert revived.json()["meta"]["versionId"] == "3"
    assert (await client.get(f"/Patient/{created['id']}")).status_code == 200


async def test_unknown_resource_type_is_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/Foo/1"),
        await client.post("/Foo", content=b'{"resourceType":"Foo"}', headers=FHIR_JSON),
        await client.get("/MedicinalProduct/1"),  # R4 type that the R4B models do not carry
    ):
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_read_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


async def test_other_resource_types_and_application_json(client: httpx.AsyncClient) -> None:
    example = orjson.dumps({**patient(), "id": "example"})
    assert (await client.put("/Patient/example", content=example, headers=FHIR_JSON)).status_code == 201
    response = await client.post(
        "/Observation", content=orjson.dumps(observation()), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201
    assert response.json()["valueQuantity"]["value"] == 72
