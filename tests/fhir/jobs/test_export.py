"""$export (Bulk Data Access): kick-off checks, the manifest, NDJSON files per type, the three levels,
_type and _since, ignored parameters told in the error file, deleting the files, and an export that
goes on after a restart without repeating or losing a resource."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

from app.fhir.jobs.worker import JobWorker
from app.main import job_config
from tests.conftest import BASE, app_client
from tests.databases import TestDatabase
from tests.fhir.fixtures import FHIR_JSON, observation, patient
from tests.fhir.jobs.conftest import TIMEOUT, ndjson, wait_finished

ASYNC = {"Prefer": "respond-async"}


async def _put(http: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    url = f"/{resource['resourceType']}/{resource['id']}"
    response = await http.put(url, content=orjson.dumps(resource), headers=FHIR_JSON)
    assert response.is_success, response.text


async def _world(http: httpx.AsyncClient, observations_each: int = 2) -> None:
    for n in range(3):
        await _put(http, {**patient(given=f"Pasient{n}"), "id": f"p{n}"})
        for k in range(observations_each):
            await _put(http, {**observation(f"Patient/p{n}"), "id": f"o{n}-{k}"})
    await _put(http, {"resourceType": "Organization", "id": "org", "name": "Fjordvik legekontor"})
    group = {
        "resourceType": "Group",
        "id": "cohort",
        "type": "person",
        "actual": True,
        "member": [
            {"entity": {"reference": "Patient/p0"}},
            {"entity": {"reference": f"{BASE}/Patient/p1"}},
            {"entity": {"reference": "Patient/p2"}, "inactive": True},
        ],
    }
    await _put(http, group)


async def _export(http: httpx.AsyncClient, path: str, **params: str) -> tuple[dict[str, Any], str]:
    kick_off = await http.get(path, params=params, headers=ASYNC)
    assert kick_off.status_code == 202, kick_off.text
    status_url = kick_off.headers["Content-Location"]
    done = await wait_finished(http, status_url)
    assert done.status_code == 200, done.text
    assert done.headers["content-type"].startswith("application/json")
    return done.json(), status_url


async def _contents(http: httpx.AsyncClient, manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Resource type -> ids, read from every output file (in file order)."""
    found: dict[str, list[str]] = {}
    for item in manifest["output"]:
        response = await http.get(item["url"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        lines = ndjson(response.content)
        assert len(lines) == item["count"]
        assert {r["resourceType"] for r in lines} == {item["type"]}
        found.setdefault(item["type"], []).extend(r["id"] for r in lines)
    return found


async def test_kick_off_checks(client: httpx.AsyncClient) -> None:
    plain = await client.get("/$export")
    assert plain.status_code == 400
    assert "respond-async" in plain.text
    assert (
        await client.get("/$export", params={"_outputFormat": "text/csv"}, headers=ASYNC)
    ).status_code == 400
    assert (await client.get("/$export", params={"_type": "Nonsense"}, headers=ASYNC)).status_code == 400
    # a type outside the Patient compartment cannot be exported by patient
    assert (
        await client.get("/Patient/$export", params={"_type": "Organization"}, headers=ASYNC)
    ).status_code == 400
    assert (await client.get("/$export", params={"_since": "yesterday"}, headers=ASYNC)).status_code == 400
    assert (await client.get("/Group/none/$export", headers=ASYNC)).status_code == 404
    strict = {**ASYNC, "Prefer": "respond-async, handling=strict"}
    assert (
        await client.get("/$export", params={"_typeFilter": "Patient?gender=male"}, headers=strict)
    ).status_code == 400


async def test_system_export_writes_every_type(client: httpx.AsyncClient, worker: JobWorker) -> None:
    await _world(client)
    manifest, _ = await _export(client, "/$export")
    assert manifest["request"] == f"{BASE}/$export"
    assert manifest["requiresAccessToken"] is False
    assert manifest["transactionTime"].endswith("Z")
    assert manifest["error"] == []
    found = await _contents(client, manifest)
    assert sorted(found["Patient"]) == ["p0", "p1", "p2"]
    assert sorted(found["Observation"]) == [f"o{n}-{k}" for n in range(3) for k in range(2)]
    assert found["Organization"] == ["org"]
    assert found["Group"] == ["cohort"]


async def test_patient_and_group_levels(client: httpx.AsyncClient, worker: JobWorker) -> None:
    await _world(client)
    by_patient = await _contents(client, (await _export(client, "/Patient/$export"))[0])
    assert "Organization" not in by_patient  # not in the Patient compartment
    assert sorted(by_patient["Patient"]) == ["p0", "p1", "p2"]
    assert len(by_patient["Observation"]) == 6

    by_group = await _contents(client, (await _export(client, "/Group/cohort/$export"))[0])
    assert sorted(by_group["Patient"]) == ["p0", "p1"]  # p2's membership is inactive
    assert sorted(by_group["Observation"]) == ["o0-0", "o0-1", "o1-0", "o1-1"]


async def test_type_and_since(client: httpx.AsyncClient, worker: JobWorker) -> None:
    await _world(client)
    only = await _contents(client, (await _export(client, "/$export", _type="Observation,Patient"))[0])
    assert set(only) == {"Observation", "Patient"}

    first, _ = await _export(client, "/$export", _type="Patient")
    await asyncio.sleep(0.01)
    await _put(client, {**patient(given="Endret"), "id": "p1"})
    changed = await _contents(client, (await _export(client, "/$export", _since=first["transactionTime"]))[0])
    assert changed == {"Patient": ["p1"]}


async def test_ignored_parameters_are_told_and_files_can_be_deleted(
    client: httpx.AsyncClient, worker: JobWorker
) -> None:
    await _world(client, observations_each=0)
    manifest, status_url = await _export(client, "/$export", _type="Patient", _elements="id")
    (told,) = manifest["error"]
    assert told["type"] == "OperationOutcome"
    (outcome,) = ndjson((await client.get(told["url"])).content)
    assert "_elements" in outcome["issue"][0]["diagnostics"]
    file_url = manifest["output"][0]["url"]

    assert (await client.delete(status_url)).status_code == 202
    assert (await client.get(file_url)).status_code == 404
    assert (await client.get(status_url)).status_code == 404


async def test_an_export_goes_on_after_a_restart(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    # Files of 2 resources, a long rest between steps and a short lease: the first worker is stopped
    # mid-export; the second takes over once the lease ends and goes on from the last stored file.
    slow = {"job_batch_size": 2, "job_duty_cycle": 0.02, "job_lease_seconds": 0.5, "job_poll_seconds": 0.05}
    async with app_client(session_databases[backend], **slow) as (http, app):
        await _world(http, observations_each=3)
        kick_off = await http.get("/Patient/$export", params={"_type": "Observation"}, headers=ASYNC)
        status_url = kick_off.headers["Content-Location"]
        first: JobWorker = app.state.jobs
        first.start()
        deadline = time.monotonic() + TIMEOUT
        while not (await http.get(status_url)).headers.get("X-Progress", "").startswith("exported 4 "):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await first.stop()

        second = JobWorker(
            app.state.fhir, job_config(app.state.settings.model_copy(update={"job_duty_cycle": 1.0}))
        )
        second.start()
        try:
            done = await wait_finished(http, status_url)
        finally:
            await second.stop()
        manifest = done.json()
        found = await _contents(http, manifest)
    assert [item["count"] for item in manifest["output"]] == [2, 2, 2, 2, 1]
    assert sorted(found["Observation"]) == sorted(f"o{n}-{k}" for n in range(3) for k in range(3))
