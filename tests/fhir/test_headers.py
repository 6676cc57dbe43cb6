"""If-Match, If-None-Match, If-Modified-Since, Prefer, _format and Accept (both databases)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.fhir.fixtures import FHIR_JSON, patient


async def created_patient(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


async def test_if_match_current_version_updates(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    response = await client.put(
        f"/Patient/{body['id']}",
        content=orjson.dumps({**body, "gender": "male"}),
        headers={**FHIR_JSON, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'


async def test_if_match_stale_version_is_412_and_nothing_changes(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    await client.put(url, content=orjson.dumps({**body, "gender": "male"}), headers=FHIR_JSON)
    stale = await client.put(
        url, content=orjson.dumps({**body, "gender": "other"}), headers={**FHIR_JSON, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    current = (await client.get(url)).json()
    assert current["gender"] == "male"
    assert current["meta"]["versionId"] == "2"


async def test_if_match_on_delete(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    assert (await client.delete(url, headers={"If-Match": 'W/"7"'})).status_code == 412
    assert (await client.get(url)).status_code == 200
    assert (await client.delete(url, headers={"If-Match": '"1"'})).status_code == 200


async def test_malformed_if_match_is_400(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    response = await client.put(
        f"/Patient/{body['id']}", content=orjson.dumps(body), headers={**FHIR_JSON, "If-Match": "yesterday"}
    )
    assert response.status_code == 400


async def test_if_match_takes_every_form_of_entity_tag(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"

    async def put(if_match: str, gender: str) -> httpx.Response:
        content = orjson.dumps({**body, "gender": gender})
        return await client.put(url, content=content, headers={**FHIR_JSON, "If-Match": if_match})

    # A well-formed tag that names no version fails the precondition; it is not malformed.
    assert (await put('W/"abc"', "male")).status_code == 412
    assert (await client.delete(url, headers={"If-Match": '"abc"'})).status_code == 412
    # `*` matches whatever version is current; bare and quoted numbers are the version.
    assert (await put("*", "male")).headers["etag"] == 'W/"2"'
    assert (await put("2", "female")).headers["etag"] == 'W/"3"'
    assert (await put('"3"', "male")).headers["etag"] == 'W/"4"'
    assert (await put("yesterday", "female")).status_code == 400
    # `*` on what does not exist (never, or no longer) is 412, and creates nothing.
    missing = orjson.dumps({**body, "id": "never-there"})
    refused = await client.put(
        "/Patient/never-there", content=missing, headers={**FHIR_JSON, "If-Match": "*"}
    )
    assert refused.status_code == 412
    assert (await client.get("/Patient/never-there")).status_code == 404
    assert (await client.delete(url, headers={"If-Match": "*"})).status_code == 200
    assert (await client.delete(url, headers={"If-Match": "*"})).status_code == 412


async def test_if_none_match_takes_the_forms_if_match_takes(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    for tag in ('W/"1"', '"1"', "1", 'W/"0", 1', "*"):
        assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 304, tag
    for tag in ('W/"2"', "2", '"abc"', "nonsense"):
        assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 200, tag


async def test_if_none_match_gives_304_for_current_version(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    not_modified = await client.get(url, headers={"If-None-Match": 'W/"1"'})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == 'W/"1"'
    assert (await client.get(url, headers={"If-None-Match": 'W/"0"'})).status_code == 200
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 304


async def test_if_modified_since(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    last_modified = (await client.get(url)).headers["last-modified"]
    assert (await client.get(url, headers={"If-Modified-Since": last_modified})).status_code == 304
    long_ago = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert (await client.get(url, headers={"If-Modified-Since": long_ago})).status_code == 200
    assert (await client.get(url, headers={"If-Modified-Since": "not a date"})).status_code == 200


async def test_prefer_return_minimal(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/Patient", content=orjson.dumps(patient()), headers={**FHIR_JSON, "Prefer": "return=minimal"}
    )
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["location"]
    assert response.headers["etag"] == 'W/"1"'


async def test_prefer_return_operation_outcome(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/Patient",
        content=orjson.dumps(patient()),
        headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"},
    )
    assert response.status_code == 201
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"


async def test_prefer_return_representation_is_the_default(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/Patient", content=orjson.dumps(patient()), headers={**FHIR_JSON, "Prefer": "return=representation"}
    )
    assert response.json()["resourceType"] == "Patient"


async def test_format_parameter(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    assert (
        (await client.get(url, params={"_format": "json"}))
        .headers["content-type"]
        .startswith("application/fhir+json")
    )
    plain = await client.get(url, params={"_format": "application/json"})
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["id"] == body["id"]
    xml = await client.get(url, params={"_format": "xml"})
    assert xml.status_code == 406
    assert xml.json()["resourceType"] == "OperationOutcome"
    pretty = await client.get(url, params={"_pretty": "true"})
    assert b"\n  " in pretty.content
    assert pretty.json() == (await client.get(url)).json()


async def test_accept_header(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    plain = await client.get(url, headers={"Accept": "application/json"})
    assert plain.headers["content-type"].startswith("application/json")
    assert (await client.get(url, headers={"Accept": "application/fhir+xml"})).status_code == 406
    assert (await client.get(url, headers={"Accept": "*/*"})).status_code == 200


async def test_fhir_version_parameter(client: httpx.AsyncClient) -> None:
    body = await created_patient(client)
    url = f"/Patient/{body['id']}"
    for accept in ("application/fhir+json; fhirVersion=4.0", "application/fhir+json;fhirVersion=4.0.1"):
        assert (await client.get(url, headers={"Accept": accept})).status_code == 200, accept
    refused = await client.get(url, headers={"Accept": "application/fhir+json; fhirVersion=3.0"})
    assert refused.status_code == 406
    assert "fhirVersion 3.0" in refused.json()["issue"][0]["diagnostics"]
    assert (
        await client.get("/metadata", headers={"Accept": "application/fhir+json; fhirVersion=5.0"})
    ).status_code == 406
    # One acceptable alternative is enough.
    either = "application/fhir+json; fhirVersion=3.0, application/fhir+json; fhirVersion=4.0"
    assert (await client.get(url, headers={"Accept": either})).status_code == 200
    stu3_body = {"Content-Type": "application/fhir+json; fhirVersion=3.0"}
    assert (
        await client.post("/Patient", content=orjson.dumps(patient()), headers=stu3_body)
    ).status_code == 415
