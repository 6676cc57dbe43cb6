"""$reindex with Prefer: respond-async: 202 and a status URL, progress while it runs, the operation's
answer in a batch-response Bundle, cancellation, and a job that goes on where it was after a restart."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
from fastapi import FastAPI

from app.fhir.jobs.worker import JobWorker
from app.main import job_config
from tests.conftest import BASE, app_client
from tests.databases import TestDatabase
from tests.fhir.fixtures import FHIR_JSON, patient
from tests.fhir.jobs.conftest import TIMEOUT, wait_finished

ASYNC = {"Prefer": "respond-async"}
NICKNAME = {
    "resourceType": "SearchParameter",
    "id": "patient-alias",
    "url": "http://helsebro.example/fhir/SearchParameter/patient-alias",
    "name": "alias",
    "status": "active",
    "description": "A nickname of the patient",
    "code": "alias-async",  # a code no other test uses (the session's test app keeps its registry)
    "base": ["Patient"],
    "type": "string",
    "expression": "Patient.name.where(use='nickname').given",
}


async def _patients(http: httpx.AsyncClient, count: int) -> None:
    for n in range(count):
        body = {**patient(), "id": f"p{n}", "name": [{"use": "nickname", "given": [f"Kallenavn{n}"]}]}
        assert (await http.put(f"/Patient/p{n}", content=orjson.dumps(body), headers=FHIR_JSON)).is_success


async def test_async_reindex_answers_202_then_the_operation_outcome(
    client: httpx.AsyncClient, worker: JobWorker
) -> None:
    await _patients(client, 3)
    await client.put("/SearchParameter/patient-alias", content=orjson.dumps(NICKNAME), headers=FHIR_JSON)

    kick_off = await client.post("/$reindex", headers=ASYNC)
    assert kick_off.status_code == 202, kick_off.text
    status_url = kick_off.headers["Content-Location"]
    assert status_url.startswith(f"{BASE}/_async/")

    done = await wait_finished(client, status_url)
    assert done.status_code == 200
    bundle = done.json()
    assert bundle["type"] == "batch-response"
    assert bundle["entry"][0]["response"]["status"] == "200 OK"
    messages = " ".join(i["diagnostics"] for i in bundle["entry"][0]["resource"]["issue"])
    assert "Reindexed 4 resources" in messages
    assert "Patient:alias-async" in messages
    found = (await client.get("/Patient", params={"alias-async": "kallenavn1"})).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["p1"]
    # /metadata is refreshed when the job completes
    statement = (await client.get("/metadata")).json()
    caps = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "alias-async" in {p["name"] for p in caps["searchParam"]}


async def test_type_level_async_reindex_and_unknown_types(
    client: httpx.AsyncClient, worker: JobWorker
) -> None:
    await _patients(client, 2)
    kick_off = await client.post("/Patient/$reindex", headers=ASYNC)
    done = await wait_finished(client, kick_off.headers["Content-Location"])
    assert "Reindexed 2 resources" in done.text
    assert (await client.post("/Nonsense/$reindex", headers=ASYNC)).status_code == 404
    assert (await client.get("/_async/0123456789abcdef")).status_code == 404


async def test_a_cancelled_job_never_runs_and_is_gone(client: httpx.AsyncClient, app: FastAPI) -> None:
    await _patients(client, 1)
    kick_off = await client.post("/$reindex", headers=ASYNC)  # no worker runs yet
    status_url = kick_off.headers["Content-Location"]
    queued = await client.get(status_url)
    assert queued.status_code == 202
    assert queued.headers["X-Progress"] == "queued"

    cancelled = await client.delete(status_url)
    assert cancelled.status_code == 202
    assert (await client.get(status_url)).status_code == 404
    assert (await client.delete(status_url)).status_code == 404

    jobs: JobWorker = app.state.jobs
    jobs.start()
    try:
        await asyncio.sleep(0.3)
        assert (await client.get(status_url)).status_code == 404
    finally:
        await jobs.stop()


async def test_a_job_goes_on_after_a_restart(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    # Steps of 2 resources, a long rest between steps and a short lease: the first worker is stopped
    # mid-job, as a process that dies would be, and a second takes the job over once its lease ends.
    slow = {"job_batch_size": 2, "job_duty_cycle": 0.02, "job_lease_seconds": 0.5, "job_poll_seconds": 0.05}
    async with app_client(session_databases[backend], **slow) as (http, app):
        await _patients(http, 9)
        status_url = (await http.post("/Patient/$reindex", headers=ASYNC)).headers["Content-Location"]
        first: JobWorker = app.state.jobs
        first.start()
        deadline = time.monotonic() + TIMEOUT
        while "reindexed 4 of 9" not in (await http.get(status_url)).headers.get("X-Progress", ""):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await first.stop()
        stopped_at = (await http.get(status_url)).headers["X-Progress"]
        assert stopped_at.startswith("reindexed 4 of 9")

        fast = job_config(app.state.settings.model_copy(update={"job_duty_cycle": 1.0}))
        second = JobWorker(app.state.fhir, fast)
        second.start()
        try:
            done = await wait_finished(http, status_url)
        finally:
            await second.stop()
    assert done.status_code == 200
    assert "Reindexed 9 resources" in done.text  # the steps before the restart are counted once
