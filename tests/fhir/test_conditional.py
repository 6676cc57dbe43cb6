"""Conditional create (If-None-Exist), conditional update and conditional delete (both databases)."""

from __future__ import annotations

import httpx
import orjson

from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr
from tests.conftest import BASE
from tests.fhir.fixtures import FHIR_JSON, patient

FNR = synthetic_fnr(1, 2, 1985, 200)
BY_FNR = f"identifier={FNR_SYSTEM}|{FNR}"


async def test_if_none_exist_creates_once_then_returns_the_match(client: httpx.AsyncClient) -> None:
    headers = {**FHIR_JSON, "If-None-Exist": BY_FNR}
    first = await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=headers)
    assert first.status_code == 201
    second = await client.post(
        "/Patient", content=orjson.dumps(patient(fnr=FNR, given="Other")), headers=headers
    )
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["name"][0]["given"] == ["Kari"]  # the existing resource, untouched


async def test_if_none_exist_token_forms(client: httpx.AsyncClient) -> None:
    created = await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON)
    res_id = created.json()["id"]
    for criteria in (f"identifier={FNR}", BY_FNR, f"_id={res_id}", f"identifier={FNR_SYSTEM}|"):
        again = await client.post(
            "/Patient",
            content=orjson.dumps(patient(fnr=FNR)),
            headers={**FHIR_JSON, "If-None-Exist": criteria},
        )
        assert again.status_code == 200, criteria
        assert again.json()["id"] == res_id


async def test_if_none_exist_with_several_matches_is_412(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON)
    response = await client.post(
        "/Patient", content=orjson.dumps(patient(fnr=FNR)), headers={**FHIR_JSON, "If-None-Exist": BY_FNR}
    )
    assert response.status_code == 412


async def test_if_none_exist_rejects_unknown_parameters_and_mismatching_resources(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.post(
        "/Patient", content=orjson.dumps(patient()), headers={**FHIR_JSON, "If-None-Exist": "nickname=Kari"}
    )
    assert unknown.status_code == 400
    mismatch = await client.post(
        "/Patient",
        content=orjson.dumps(patient(fnr=synthetic_fnr(2, 2, 1990, 300))),
        headers={**FHIR_JSON, "If-None-Exist": BY_FNR},
    )
    assert mismatch.status_code == 400
    assert "does not match" in mismatch.json()["issue"][0]["diagnostics"]


async def test_deleted_resource_no_longer_matches(client: httpx.AsyncClient) -> None:
    headers = {**FHIR_JSON, "If-None-Exist": BY_FNR}
    first = (await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=headers)).json()
    await client.delete(f"/Patient/{first['id']}")
    again = await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first["id"]


async def test_conditional_update_creates_then_updates_the_match(client: httpx.AsyncClient) -> None:
    created = await client.put(
        f"/Patient?{BY_FNR}", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON
    )
    assert created.status_code == 201
    res_id = created.json()["id"]
    updated = await client.put(
        f"/Patient?{BY_FNR}", content=orjson.dumps(patient(fnr=FNR, given="Åse")), headers=FHIR_JSON
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == res_id
    assert updated.json()["meta"]["versionId"] == "2"
    assert updated.json()["name"][0]["given"] == ["Åse"]


async def test_conditional_update_with_client_id_and_conflicts(client: httpx.AsyncClient) -> None:
    body = {**patient(fnr=FNR), "id": "fnr-patient"}
    created = await client.put(f"/Patient?{BY_FNR}", content=orjson.dumps(body), headers=FHIR_JSON)
    assert created.status_code == 201
    assert created.json()["id"] == "fnr-patient"
    wrong_id = await client.put(
        f"/Patient?{BY_FNR}", content=orjson.dumps({**body, "id": "someone-else"}), headers=FHIR_JSON
    )
    assert wrong_id.status_code == 400
    stale = await client.put(
        f"/Patient?{BY_FNR}",
        content=orjson.dumps({**body, "gender": "male"}),
        headers={**FHIR_JSON, "If-Match": 'W/"9"'},
    )
    assert stale.status_code == 412
    await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON)
    several = await client.put(
        f"/Patient?{BY_FNR}", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON
    )
    assert several.status_code == 412


async def test_conditional_update_without_criteria_is_400(client: httpx.AsyncClient) -> None:
    response = await client.put("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    assert response.status_code == 400


async def test_conditional_delete(client: httpx.AsyncClient) -> None:
    created = (
        await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON)
    ).json()
    deleted = await client.delete(f"/Patient?{BY_FNR}")
    assert deleted.status_code == 200
    assert (await client.get(f"/Patient/{created['id']}")).status_code == 410
    nothing = await client.delete(f"/Patient?{BY_FNR}")
    assert nothing.status_code == 200
    assert "nothing to delete" in nothing.json()["issue"][0]["diagnostics"]


async def test_conditional_delete_refuses_several_matches(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON)
    assert (await client.delete(f"/Patient?{BY_FNR}")).status_code == 412
    assert (await client.delete("/Patient?birthdate=1972")).status_code == 412  # any search parameter works
    assert (await client.delete("/Patient?nickname=Kari")).status_code == 400  # unknown: never ignored


async def test_conditional_update_that_would_overwrite_a_non_matching_resource_is_409(
    client: httpx.AsyncClient,
) -> None:
    other = {**patient(fnr=synthetic_fnr(3, 3, 1977, 100)), "id": "taken"}
    await client.put("/Patient/taken", content=orjson.dumps(other), headers=FHIR_JSON)
    body = {**patient(fnr=FNR), "id": "taken"}
    response = await client.put(f"/Patient?{BY_FNR}", content=orjson.dumps(body), headers=FHIR_JSON)
    assert response.status_code == 409
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (await client.get("/Patient/taken")).json()["identifier"] == other["identifier"]


async def test_conditional_create_with_any_search_parameters(client: httpx.AsyncClient) -> None:
    headers = {**FHIR_JSON, "If-None-Exist": "family=nordmann&birthdate=1972-09-13"}
    first = await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=headers)
    assert first.status_code == 201
    again = await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    # a resource that would not be found by its own criteria is refused, and nothing is stored
    other = {**patient(fnr=FNR), "birthDate": "1980-01-01"}
    refused = await client.post(
        "/Patient", content=orjson.dumps(other), headers={**FHIR_JSON, "If-None-Exist": "birthdate=1990"}
    )
    assert refused.status_code == 400
    assert (await client.get("/Patient", params={"birthdate": "1980"})).json()["total"] == 0


async def test_criteria_take_this_servers_absolute_references_as_local(client: httpx.AsyncClient) -> None:
    """A reference criterion on this server's base URL finds what the same search finds (before, the
    criteria were parsed as if the server had no base URL: the absolute form never matched)."""
    owner = await client.post("/Patient", content=orjson.dumps(patient(fnr=FNR)), headers=FHIR_JSON)
    patient_id = owner.json()["id"]
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Puls"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    first = await client.post("/Observation", content=orjson.dumps(observation), headers=FHIR_JSON)
    assert first.status_code == 201
    absolute = f"subject={BASE}/Patient/{patient_id}"
    assert (await client.get(f"/Observation?{absolute}")).json()["total"] == 1
    again = await client.post(
        "/Observation", content=orjson.dumps(observation), headers={**FHIR_JSON, "If-None-Exist": absolute}
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    deleted = await client.delete(f"/Observation?{absolute}")
    assert deleted.status_code in (200, 204)
    assert (await client.get(f"/Observation?subject=Patient/{patient_id}")).json()["total"] == 0
