"""$export under the access policy: only system clients (SMART Backend Services) may export, only the
types their scopes allow them to search, every page the job reads is audited in their name, and a job's
status and files are for the client that started it only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from fastapi import FastAPI

from app.fhir.jobs.worker import JobWorker
from tests.fhir.jobs.conftest import ndjson, running_jobs, wait_finished
from tests.security.helpers import World, auth_header

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
async def worker(secure_app: FastAPI) -> AsyncIterator[JobWorker]:
    async with running_jobs(secure_app) as jobs:
        yield jobs


async def test_personnel_and_citizens_cannot_export(world: World) -> None:
    for who in (world.gp, world.other, world.kari):  # own GP, a stranger organisation, a citizen
        refused = await world.http.get("/$export", headers={**who, **ASYNC})
        assert refused.status_code == 403, refused.text
        group = await world.http.get("/Group/none/$export", headers={**who, **ASYNC})
        assert group.status_code == 403, group.text  # refused before anything is read for it
    assert len(await world.audit("outcome=4&subtype=operation")) == 6


async def test_a_system_client_exports_what_its_scopes_allow(
    world: World, mint: Callable[..., str], worker: JobWorker
) -> None:
    exporter = auth_header(mint(subject="registry", scopes="system/Patient.rs", client_id="registry"))
    refused = await world.http.get("/$export", params={"_type": "Observation"}, headers={**exporter, **ASYNC})
    assert refused.status_code == 403
    assert "Observation" in refused.text

    kick_off = await world.http.get("/$export", headers={**exporter, **ASYNC})
    assert kick_off.status_code == 202, kick_off.text
    status_url = kick_off.headers["Content-Location"]
    done = await wait_finished(world.http, status_url, exporter)
    assert done.status_code == 200, done.text
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True
    assert {item["type"] for item in manifest["output"]} == {"Patient"}  # no other type is allowed
    file_url = manifest["output"][0]["url"]
    exported = ndjson((await world.http.get(file_url, headers=exporter)).content)
    assert {"kari", "nils"} <= {p["id"] for p in exported}

    # another client, personnel of a stranger organisation, and a citizen whose data is in the files see
    # no job and no file; without a token, nothing at all
    stranger = auth_header(mint(subject="other", scopes="system/*.rs", client_id="other"))
    for outsider in (stranger, world.other, world.kari):
        assert (await world.http.get(status_url, headers=outsider)).status_code == 404
        assert (await world.http.get(file_url, headers=outsider)).status_code == 404
        assert (await world.http.delete(status_url, headers=outsider)).status_code == 404
    assert (await world.http.get(file_url)).status_code == 401
    assert (await world.http.get(file_url, headers=exporter)).status_code == 200  # nothing was deleted

    # the job's reads are the exporter's own searches, audited with the patients they returned
    searches = await world.audit("agent:identifier=registry&patient=Patient/kari&subtype=search-type")
    assert searches
    assert all(e["outcome"] == "0" for e in searches)
