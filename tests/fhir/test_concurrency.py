"""Races the database must settle: no lost update, no duplicate conditional create (both databases)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr
from tests.conftest import app_client
from tests.databases import TestDatabase
from tests.fhir.fixtures import FHIR_JSON, patient


@pytest.fixture
async def client(
    backend: str, session_databases: dict[str, TestDatabase]
) -> AsyncIterator[httpx.AsyncClient]:
    """These races need transactions side by side: ten pooled connections, not the suite's one."""
    async with app_client(session_databases[backend], db_pool_size=10, db_max_overflow=0) as (http, _):
        yield http


async def test_twenty_concurrent_puts_with_the_same_if_match_have_one_winner(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    url = f"/Patient/{body['id']}"

    async def put(n: int) -> httpx.Response:
        changed = {**body, "name": [{"family": "Nordmann", "given": [f"Writer{n}"]}]}
        return await client.put(
            url, content=orjson.dumps(changed), headers={**FHIR_JSON, "If-Match": 'W/"1"'}
        )

    responses = await asyncio.gather(*(put(n) for n in range(20)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert statuses[409] + statuses[412] == 19, statuses
    winner = next(r for r in responses if r.status_code == 200).json()
    current = (await client.get(url)).json()
    assert current["meta"]["versionId"] == "2"
    assert current["name"] == winner["name"]
    history = (await client.get(f"{url}/_history")).json()
    assert history["total"] == 2


async def test_concurrent_puts_without_if_match_all_land_in_order(client: httpx.AsyncClient) -> None:
    body = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    url = f"/Patient/{body['id']}"

    async def put(n: int) -> httpx.Response:
        changed = {**body, "name": [{"family": "Nordmann", "given": [f"Writer{n}"]}]}
        return await client.put(url, content=orjson.dumps(changed), headers=FHIR_JSON)

    responses = await asyncio.gather(*(put(n) for n in range(10)))
    assert {r.status_code for r in responses} == {200}
    versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
    assert versions == list(range(2, 12))  # every update became its own version: none was lost


async def test_ten_concurrent_conditional_creates_leave_exactly_one(client: httpx.AsyncClient) -> None:
    fnr = synthetic_fnr(24, 12, 1990, 150)
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier={FNR_SYSTEM}|{fnr}"}
    body = orjson.dumps(patient(fnr=fnr))
    responses = await asyncio.gather(
        *(client.post("/Patient", content=body, headers=headers) for _ in range(10))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1, statuses
    assert statuses[200] == 9, statuses
    assert len({r.json()["id"] for r in responses}) == 1
    history = (await client.get("/Patient/_history")).json()
    assert history["total"] == 1


async def test_concurrent_update_as_create_of_one_id_creates_it_once(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({**patient(), "id": "same-id"})
    responses = await asyncio.gather(
        *(client.put("/Patient/same-id", content=body, headers=FHIR_JSON) for _ in range(8))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1, statuses
    assert statuses[200] == 7, statuses  # the rest are no-op updates of identical content
    assert (await client.get("/Patient/same-id/_history")).json()["total"] == 1
