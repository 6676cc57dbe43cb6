"""PATCH with JSON Patch and FHIRPath Patch through the REST API (both databases)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from app.fhir.hooks import ReadEvent, Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.no_basis.identifiers import FNR_SYSTEM
from tests.conftest import BASE
from tests.fhir.fixtures import FHIR_JSON, patient
from tests.fhir.patch.builders import operation, params

JSON_PATCH = {"Content-Type": "application/json-patch+json"}


async def create_patient(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = patient(telecom=[{"system": "phone", "value": "11111111"}, {"system": "email", "value": "k@x.no"}])
    body.update(extra)
    response = await client.post("/Patient", content=orjson.dumps(body), headers=FHIR_JSON)
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


async def json_patch(
    client: httpx.AsyncClient, res_id: str, ops: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.patch(
        f"/Patient/{res_id}", content=orjson.dumps(ops), headers={**JSON_PATCH, **(headers or {})}
    )


async def fhirpath_patch(
    client: httpx.AsyncClient, res_id: str, *ops: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.patch(
        f"/Patient/{res_id}", content=orjson.dumps(params(*ops)), headers={**FHIR_JSON, **(headers or {})}
    )


async def current_version(client: httpx.AsyncClient, res_id: str) -> str:
    return str((await client.get(f"/Patient/{res_id}")).json()["meta"]["versionId"])


async def test_json_patch_every_op_makes_one_new_version(client: httpx.AsyncClient) -> None:
    created = await create_patient(client)
    res_id = created["id"]
    ops = [
        {"op": "test", "path": "/gender", "value": "female"},
        {"op": "replace", "path": "/gender", "value": "other"},
        {"op": "add", "path": "/name/0/given/-", "value": "Marie"},
        {"op": "add", "path": "/active", "value": True},
        {"op": "remove", "path": "/birthDate"},
        {"op": "move", "from": "/telecom/1", "path": "/telecom/0"},
        {"op": "copy", "from": "/name/0/family", "path": "/name/0/prefix"},
        {"op": "replace", "path": "/name/0/prefix", "value": ["Dr."]},
    ]
    response = await json_patch(client, res_id, ops)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gender"] == "other"
    assert body["name"][0]["given"] == ["Kari", "Marie"]
    assert body["name"][0]["prefix"] == ["Dr."]
    assert body["active"] is True
    assert "birthDate" not in body
    assert [t["system"] for t in body["telecom"]] == ["email", "phone"]
    assert body["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert response.headers["location"] == f"{BASE}/Patient/{res_id}/_history/2"
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert (await client.get(f"/Patient/{res_id}")).content == response.content


async def test_json_patch_failures_store_nothing(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    failed_test = await json_patch(
        client,
        res_id,
        [
            {"op": "replace", "path": "/gender", "value": "male"},
            {"op": "test", "path": "/gender", "value": "x"},
        ],
    )
    assert failed_test.status_code == 422
    outcome = failed_test.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "test failed" in outcome["issue"][0]["diagnostics"]
    bad_pointer = await json_patch(
        client, res_id, [{"op": "replace", "path": "/name/5/family", "value": "X"}]
    )
    assert bad_pointer.status_code == 422
    assert "/name/5" in bad_pointer.json()["issue"][0]["diagnostics"]
    for malformed in (
        {"op": "add"},
        [{"op": "delete", "path": "/gender"}],
        [{"op": "add", "path": "gender"}],
    ):
        response = await json_patch(client, res_id, malformed)
        assert response.status_code == 400, malformed
        assert response.json()["resourceType"] == "OperationOutcome"
    not_json = await client.patch(f"/Patient/{res_id}", content=b"[{", headers=JSON_PATCH)
    assert not_json.status_code == 400
    assert await current_version(client, res_id) == "1"
    assert (await client.get(f"/Patient/{res_id}")).json()["gender"] == "female"


async def test_fhirpath_patch_operations(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    response = await fhirpath_patch(
        client,
        res_id,
        operation("replace", "Patient.telecom.where(system='phone').value", value="22222222"),
        operation(
            "add", f"Patient.identifier.where(system='{FNR_SYSTEM}')", name="use", value=("valueCode", "old")
        ),
        operation("add", "Patient", name="deceased", value=("valueDateTime", "2024-05-01T10:00:00Z")),
        operation("add", "Patient", name="address", value=("valueAddress", {"city": "Tromsø"})),
        operation("insert", "Patient.name[0].given", value=("valueString", "Åse"), index=0),
        operation("move", "Patient.telecom", source=1, destination=0),
        operation("delete", "Patient.birthDate"),
        operation(
            "add", "Patient", name="contact", value=[{"name": "name", "valueHumanName": {"family": "Øvre"}}]
        ),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["telecom"] == [
        {"system": "email", "value": "k@x.no"},
        {"system": "phone", "value": "22222222"},
    ]
    assert body["identifier"][0]["use"] == "old"
    assert body["deceasedDateTime"] == "2024-05-01T10:00:00Z"
    assert body["address"] == [{"city": "Tromsø"}]
    assert body["name"][0]["given"] == ["Åse", "Kari"]
    assert body["contact"] == [{"name": {"family": "Øvre"}}]
    assert "birthDate" not in body
    assert body["meta"]["versionId"] == "2"
    # The choice element can switch type with replace, and application/json works too.
    switched = await client.patch(
        f"/Patient/{res_id}",
        content=orjson.dumps(params(operation("replace", "Patient.deceased", value=("valueBoolean", False)))),
        headers={"Content-Type": "application/json"},
    )
    assert switched.status_code == 200
    assert switched.json()["deceasedBoolean"] is False
    assert "deceasedDateTime" not in switched.json()


async def test_unsupported_fhirpath_is_422_naming_the_expression(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    expression = "Patient.telecom.where(system='phone').value.ofType(string)"
    response = await fhirpath_patch(client, res_id, operation("replace", expression, value="x"))
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["code"] == "not-supported"
    assert issue["expression"] == [expression]
    assert "ofType()" in issue["diagnostics"]
    no_match = await fhirpath_patch(client, res_id, operation("replace", "Patient.maritalStatus", value="x"))
    assert no_match.status_code == 422
    malformed = await fhirpath_patch(client, res_id, operation("rename", "Patient.gender"))
    assert malformed.status_code == 400
    assert await current_version(client, res_id) == "1"


async def test_invalid_result_is_rejected_with_the_validators_issues(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    for response in (
        await json_patch(client, res_id, [{"op": "replace", "path": "/gender", "value": "x"}]),
        await fhirpath_patch(
            client, res_id, operation("replace", "Patient.gender", value=("valueCode", "x"))
        ),
    ):
        assert response.status_code == 422
        issue = response.json()["issue"][0]
        assert issue["code"] == "code-invalid"
        assert issue["expression"] == ["Patient.gender"]
        assert "not valid" in issue["diagnostics"]
    empty_list = await json_patch(client, res_id, [{"op": "replace", "path": "/name", "value": []}])
    assert empty_list.status_code == 422
    assert (await client.get(f"/Patient/{res_id}/_history")).json()["total"] == 1


async def test_patch_cannot_change_id_or_resource_type(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    for ops in (
        [{"op": "replace", "path": "/id", "value": "other"}],
        [{"op": "remove", "path": "/id"}],
        [{"op": "replace", "path": "/resourceType", "value": "Practitioner"}],
        [{"op": "replace", "path": "", "value": ["not", "a", "resource"]}],
    ):
        response = await json_patch(client, res_id, ops)
        assert response.status_code == 422, ops
    fhirpath = await fhirpath_patch(
        client, res_id, operation("replace", "Patient.id", value=("valueId", "x"))
    )
    assert fhirpath.status_code == 422
    assert await current_version(client, res_id) == "1"
    assert (await client.get("/Patient/other")).status_code == 404


async def test_if_match(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    ops = [{"op": "replace", "path": "/gender", "value": "male"}]
    current = await json_patch(client, res_id, ops, {"If-Match": 'W/"1"'})
    assert current.status_code == 200
    assert current.headers["etag"] == 'W/"2"'
    stale = await json_patch(
        client, res_id, [{"op": "add", "path": "/active", "value": True}], {"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert (await json_patch(client, res_id, ops, {"If-Match": "yesterday"})).status_code == 400
    assert await current_version(client, res_id) == "2"


async def test_unknown_deleted_and_unsupported(client: httpx.AsyncClient) -> None:
    ops = [{"op": "add", "path": "/active", "value": True}]
    unknown = await json_patch(client, "nobody", ops)
    assert unknown.status_code == 404
    assert unknown.json()["issue"][0]["code"] == "not-found"
    assert (await client.patch("/Foo/1", content=orjson.dumps(ops), headers=JSON_PATCH)).status_code == 404
    res_id = (await create_patient(client))["id"]
    await client.delete(f"/Patient/{res_id}")
    gone = await json_patch(client, res_id, ops)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    alive = (await create_patient(client))["id"]
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/merge-patch+json"}, {}):
        response = await client.patch(f"/Patient/{alive}", content=orjson.dumps(ops), headers=headers)
        assert response.status_code == 415, headers
        assert response.json()["issue"][0]["code"] == "not-supported"
    assert await current_version(client, alive) == "1"


async def test_prefer_return(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    minimal = await json_patch(
        client, res_id, [{"op": "replace", "path": "/gender", "value": "male"}], {"Prefer": "return=minimal"}
    )
    assert minimal.status_code == 200
    assert minimal.content == b""
    assert minimal.headers["etag"] == 'W/"2"'
    assert minimal.headers["location"].endswith(f"/Patient/{res_id}/_history/2")
    outcome = await fhirpath_patch(
        client,
        res_id,
        operation("replace", "Patient.gender", value=("valueCode", "other")),
        headers={"Prefer": "return=OperationOutcome"},
    )
    assert outcome.status_code == 200
    assert outcome.json()["resourceType"] == "OperationOutcome"
    assert f"Patient/{res_id} (version 3)" in outcome.json()["issue"][0]["diagnostics"]


async def test_no_op_patch_keeps_the_version(client: httpx.AsyncClient) -> None:
    created = await create_patient(client)
    res_id = created["id"]
    same = await json_patch(client, res_id, [{"op": "replace", "path": "/gender", "value": "female"}])
    assert same.status_code == 200
    assert same.json()["meta"]["versionId"] == "1"
    assert same.headers["etag"] == 'W/"1"'
    only_test = await json_patch(client, res_id, [{"op": "test", "path": "/gender", "value": "female"}])
    assert only_test.json()["meta"]["versionId"] == "1"
    nothing_deleted = await fhirpath_patch(client, res_id, operation("delete", "Patient.address"))
    assert nothing_deleted.status_code == 200
    assert nothing_deleted.content == (await client.get(f"/Patient/{res_id}")).content
    assert (await client.get(f"/Patient/{res_id}/_history")).json()["total"] == 1


async def test_history_shows_the_patch(client: httpx.AsyncClient) -> None:
    res_id = (await create_patient(client))["id"]
    await json_patch(client, res_id, [{"op": "replace", "path": "/gender", "value": "male"}])
    history = (await client.get(f"/Patient/{res_id}/_history")).json()
    assert history["total"] == 2
    newest, oldest = history["entry"]
    assert newest["request"] == {"method": "PATCH", "url": f"Patient/{res_id}"}
    assert newest["response"]["etag"] == 'W/"2"'
    assert newest["resource"]["gender"] == "male"
    assert oldest["resource"]["gender"] == "female"
    assert (await client.get(f"/Patient/{res_id}/_history/1")).json()["gender"] == "female"


async def test_concurrent_patches_without_if_match_all_apply(client: httpx.AsyncClient) -> None:
    """Each patch is applied to the version it locked, so appends from racing clients are never lost."""
    res_id = (await create_patient(client))["id"]
    responses = await asyncio.gather(
        *(
            json_patch(client, res_id, [{"op": "add", "path": "/name/0/given/-", "value": f"G{n}"}])
            for n in range(8)
        )
    )
    assert [r.status_code for r in responses] == [200] * 8
    final = (await client.get(f"/Patient/{res_id}")).json()
    assert final["meta"]["versionId"] == "9"
    assert sorted(final["name"][0]["given"]) == sorted(["Kari", *(f"G{n}" for n in range(8))])


async def test_patch_runs_the_read_and_write_hooks(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A patch shows the current content (and a test op probes it), so read access is checked as well."""
    res_id = (await create_patient(client))["id"]
    writes: list[WriteEvent] = []

    async def deny_read(event: ReadEvent) -> None:
        raise FhirError(Category.FORBIDDEN, f"no access to {event.res_type}/{event.res_id}")

    async def record_write(event: WriteEvent) -> None:
        writes.append(event)

    hooks = app.state.fhir.hooks
    hooks.before_read.add(Stage.ACCESS, deny_read)
    try:
        probe = await json_patch(client, res_id, [{"op": "test", "path": "/gender", "value": "female"}])
    finally:
        hooks.before_read.remove(deny_read)
    assert probe.status_code == 403
    hooks.before_write.add(Stage.ACCESS, record_write)
    try:
        changed = await json_patch(client, res_id, [{"op": "replace", "path": "/gender", "value": "male"}])
    finally:
        hooks.before_write.remove(record_write)
    assert changed.status_code == 200
    assert [(w.interaction, w.res_id, w.version) for w in writes] == [("update", res_id, 2)]
    assert writes[0].resource is not None
    assert writes[0].resource["gender"] == "male"
