"""Races the database must settle: no lost update, no duplicate conditional create (both databases)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.interactions.common import match_for_create, match_one
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.interactions.update import conditional_update_in
from app.fhir.search.criteria import Criteria, parse_criteria
from app.fhir.service import FhirService, WriteResult
from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr
from tests.conftest import app_client, require_backend
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


# Row locks of conditional matches (PostgreSQL: SQLite has one writer at a time, so units never overlap).


@pytest.fixture
async def postgres_service(
    postgres_reason: str | None, session_databases: dict[str, TestDatabase]
) -> AsyncIterator[FhirService]:
    require_backend("postgresql", postgres_reason)
    async with app_client(session_databases["postgresql"], db_pool_size=4, db_max_overflow=0) as (_, app):
        yield app.state.fhir


SYSTEM = RequestContext("http://fhir.test", SystemPrincipal("test", "race two units of work"))


async def _stored_patient(svc: FhirService, fnr: str) -> Criteria:
    rtype = svc.resource_type("Patient")
    criteria = parse_criteria(rtype, f"identifier={FNR_SYSTEM}|{fnr}", svc.registry, "http://fhir.test")
    await in_unit_of_work(
        svc, lambda conn: conditional_update_in(svc, SYSTEM, conn, rtype, criteria, patient(fnr=fnr)), "seed"
    )
    return criteria


async def test_units_matching_the_same_resource_do_not_wait_for_each_other(
    postgres_service: FhirService,
) -> None:
    """A conditional create that finds its match only relies on it: a second unit matching the same
    resource (the sender's Organization of every message, say) goes on while the first is still open."""
    svc = postgres_service
    criteria = await _stored_patient(svc, synthetic_fnr(3, 4, 1971, 210))
    first_matched, release = asyncio.Event(), asyncio.Event()

    async def first(conn: AsyncConnection) -> WriteResult | None:
        found = await match_for_create(svc, SYSTEM, conn, criteria)
        first_matched.set()
        await release.wait()
        return found

    holder = asyncio.create_task(in_unit_of_work(svc, first, "first"))
    await first_matched.wait()
    second = in_unit_of_work(svc, lambda conn: match_for_create(svc, SYSTEM, conn, criteria), "second")
    found = await asyncio.wait_for(second, timeout=5)  # waited for the first unit's commit before
    release.set()
    held = await holder
    assert found is not None
    assert held is not None
    assert found.stored.res_id == held.stored.res_id


async def test_two_units_changing_what_both_matched_both_land(postgres_service: FhirService) -> None:
    """Both share-lock the match, then both write it: PostgreSQL ends one as a deadlock, and the unit of
    work runs it again on top of the other's version. Neither change is lost."""
    svc = postgres_service
    fnr = synthetic_fnr(5, 6, 1982, 220)
    criteria = await _stored_patient(svc, fnr)
    rtype = svc.resource_type("Patient")
    both_matched = asyncio.Barrier(2)
    attempts: Counter[str] = Counter()

    def work(name: str) -> Callable[[AsyncConnection], Awaitable[WriteResult]]:
        changed = {**patient(fnr=fnr), "name": [{"family": "Nordmann", "given": [name]}]}

        async def run(conn: AsyncConnection) -> WriteResult:
            attempts[name] += 1
            await match_one(svc, SYSTEM, conn, criteria, "update")
            if attempts[name] == 1:
                await both_matched.wait()
            return await conditional_update_in(svc, SYSTEM, conn, rtype, criteria, changed)

        return run

    results = await asyncio.wait_for(
        asyncio.gather(*(in_unit_of_work(svc, work(name), name) for name in ("Per", "Pål"))), timeout=30
    )
    assert sorted(r.stored.version for r in results) == [2, 3]
    assert sorted(attempts.values()) == [1, 2]  # one unit was ended as a deadlock and ran again
    async with svc.repo.reader() as conn:
        current = await svc.repo.current(conn, "Patient", results[0].stored.res_id)
    assert current is not None
    assert current.version == 3
