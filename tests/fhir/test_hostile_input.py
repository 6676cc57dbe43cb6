"""Hostile input over HTTP, on SQLite and PostgreSQL: each answer is a 4xx OperationOutcome (never a 500),
costly searches are refused or cut short, and a read whose client left does not keep running."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import asyncpg
import httpx
import orjson
import pytest
from starlette.types import Message

from tests.conftest import app_client, require_backend
from tests.databases import ADMIN_DSN, TestDatabase
from tests.fhir.fixtures import FHIR_JSON, observation, patient
from tests.fhir.test_errors import assert_outcome as outcome_of

BIG = "99999999999999999999999"


def assert_outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    return cast(dict[str, Any], outcome_of(response, status))


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    response = await client.post(
        f"/{resource['resourceType']}", content=orjson.dumps(resource), headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- search caps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "&".join(["name=a"] * 1000),
        "&".join(["name=a"] * 200),
        "name=" + ",".join(f"a{i}" for i in range(500)),
        "identifier=" + ",".join(f"x|{i}" for i in range(500)),
        "&".join(f"name=a{i},b{i}" for i in range(101)),  # 202 values in 101 parameters
    ],
)
async def test_searches_over_the_caps_are_400_on_both_databases(
    client: httpx.AsyncClient, query: str
) -> None:
    started = time.perf_counter()
    body = assert_outcome(await client.get(f"/Patient?{query}"), 400)
    assert body["issue"][0]["code"] == "too-costly"
    assert time.perf_counter() - started < 2
    # the same through POST _search and the system-level search
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert_outcome(await client.post("/Patient/_search", content=query, headers=form), 400)
    assert_outcome(await client.get(f"/?_type=Patient&{query}"), 400)


async def test_conditional_criteria_over_the_caps_are_400(client: httpx.AsyncClient) -> None:
    criteria = "&".join(["name=a"] * 1000)
    headers = {**FHIR_JSON, "If-None-Exist": criteria}
    assert_outcome(await client.post("/Patient", content=orjson.dumps(patient()), headers=headers), 400)
    assert_outcome(
        await client.put(f"/Patient?{criteria}", content=orjson.dumps(patient()), headers=FHIR_JSON), 400
    )


async def test_searches_within_the_caps_run(client: httpx.AsyncClient) -> None:
    await create(client, patient())
    ok = await client.get("/Patient?" + "&".join(["name=kari"] * 50))
    assert ok.status_code == 200, ok.text
    assert ok.json()["total"] == 1
    ok = await client.get("/Patient?name=" + ",".join([f"x{i}" for i in range(199)] + ["kari"]))
    assert ok.json()["total"] == 1


async def test_the_caps_are_settings(session_databases: dict[str, TestDatabase], backend: str) -> None:
    async with app_client(session_databases[backend], search_max_parameters=3, search_max_values=4) as (
        http,
        _,
    ):
        assert (await http.get("/Patient?name=a&name=b&_count=5")).status_code == 200
        assert_outcome(await http.get("/Patient?name=a&name=b&name=c&_count=5"), 400)
        assert (await http.get("/Patient?name=a,b,c,d")).status_code == 200
        assert_outcome(await http.get("/Patient?name=a,b,c&gender=male,female"), 400)


@pytest.mark.parametrize(
    "query",
    [
        "name=a%00b",
        "name:exact=a%00b",
        "identifier=a%00b",
        "_id=a%00b",
        "_has:Observation:subject:code=a%00b",
        "a%00b=1",
    ],
)
async def test_control_characters_in_search_parameters_are_400(client: httpx.AsyncClient, query: str) -> None:
    assert_outcome(await client.get(f"/Patient?{query}"), 400)


async def test_control_character_in_a_composite_search_value_is_400(client: httpx.AsyncClient) -> None:
    # a string composite component went to PostgreSQL as is: 500 there
    assert_outcome(await client.get("/Observation?code-value-string=a$a%00b"), 400)


# --- writes ---------------------------------------------------------------------------------------------------


def nested_extensions(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/x", "valueString": "v"}
    for _ in range(levels):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


async def test_deeply_nested_extensions_are_400(client: httpx.AsyncClient) -> None:
    body = json.dumps(nested_extensions(150)).encode()  # orjson itself refuses to write this depth
    outcome = assert_outcome(await client.post("/Patient", content=body, headers=FHIR_JSON), 400)
    assert "nested" in outcome["issue"][0]["diagnostics"]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction"}
    bundle["entry"] = [{"request": {"method": "POST", "url": "Patient"}, "resource": nested_extensions(150)}]
    assert_outcome(await client.post("/", content=json.dumps(bundle).encode(), headers=FHIR_JSON), 400)


async def test_nul_in_a_string_is_400_naming_the_element(client: httpx.AsyncClient) -> None:
    body = patient()
    body["name"][0]["family"] = "Nord\u0000mann"
    outcome = assert_outcome(
        await client.post("/Patient", content=orjson.dumps(body), headers=FHIR_JSON), 400
    )
    assert outcome["issue"][0]["expression"] == ["Patient.name[0].family"]
    res_id = await create(client, patient())
    body["id"] = res_id
    assert_outcome(await client.put(f"/Patient/{res_id}", content=orjson.dumps(body), headers=FHIR_JSON), 400)
    patch = orjson.dumps([{"op": "replace", "path": "/name/0/family", "value": "a\u0000b"}])
    patch_headers = {"Content-Type": "application/json-patch+json"}
    # a patch whose result is invalid is 422, as any invalid patch result
    assert_outcome(await client.patch(f"/Patient/{res_id}", content=patch, headers=patch_headers), 422)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction"}
    bundle["entry"] = [{"request": {"method": "POST", "url": "Patient"}, "resource": body}]
    assert_outcome(await client.post("/", content=orjson.dumps(bundle), headers=FHIR_JSON), 400)
    assert (await client.get("/Patient")).json()["total"] == 1


async def test_repeated_json_keys_are_400(client: httpx.AsyncClient) -> None:
    body = b'{"resourceType": "Patient", "gender": "male", "gender": "female"}'
    outcome = assert_outcome(await client.post("/Patient", content=body, headers=FHIR_JSON), 400)
    assert "'gender'" in outcome["issue"][0]["diagnostics"]
    bundle = b'{"resourceType": "Bundle", "type": "transaction", "type": "batch", "entry": []}'
    assert_outcome(await client.post("/", content=bundle, headers=FHIR_JSON), 400)
    assert (await client.get("/Patient")).json()["total"] == 0


async def test_a_reference_of_no_valid_form_is_400_naming_the_element(client: httpx.AsyncClient) -> None:
    body = observation("Patient/1' OR 1=1")
    outcome = assert_outcome(
        await client.post("/Observation", content=orjson.dumps(body), headers=FHIR_JSON), 400
    )
    assert outcome["issue"][0]["expression"] == ["Observation.subject.reference"]
    assert (await client.get("/Observation")).json()["total"] == 0


async def test_bundle_placeholders_and_conditional_references_still_resolve(
    client: httpx.AsyncClient,
) -> None:
    placeholder = "urn:uuid:2f3c1c34-6d5a-4a5e-9a43-0e2f8c1b7d10"
    person = patient()
    entries = [
        {"fullUrl": placeholder, "request": {"method": "POST", "url": "Patient"}, "resource": person},
        {"request": {"method": "POST", "url": "Observation"}, "resource": observation(placeholder)},
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = await client.post("/", content=orjson.dumps(bundle), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    system, value = person["identifier"][0]["system"], person["identifier"][0]["value"]
    conditional = observation(f"Patient?identifier={system}|{value}")
    bundle["entry"] = [{"request": {"method": "POST", "url": "Observation"}, "resource": conditional}]
    response = await client.post("/", content=orjson.dumps(bundle), headers=FHIR_JSON)
    assert response.status_code == 200, response.text


# --- versions and cursors beyond the columns' range ----------------------------------------------------------


async def test_versions_beyond_the_column_range_are_404(client: httpx.AsyncClient) -> None:
    res_id = await create(client, patient())
    for version in (BIG, "3000000000", "²"):
        assert_outcome(await client.get(f"/Patient/{res_id}/_history/{version}"), 404)
    assert_outcome(await client.get(f"/_history/{BIG}"), 404)
    for kind in ("batch", "transaction"):
        entry = {"request": {"method": "GET", "url": f"Patient/{res_id}/_history/{BIG}"}}
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [entry]}
        response = await client.post("/", content=orjson.dumps(bundle), headers=FHIR_JSON)
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            assert response.json()["entry"][0]["response"]["status"].startswith("404")


async def test_history_cursors_and_counts_that_are_no_numbers_are_400(client: httpx.AsyncClient) -> None:
    res_id = await create(client, patient())
    for path in ("/_history", f"/Patient/{res_id}/_history"):
        assert_outcome(await client.get(f"{path}?_cursor={BIG}"), 400)
        assert_outcome(await client.get(f"{path}?_count=²"), 400)


# --- PostgreSQL: statement timeout, cancel on disconnect, dropped connections ------------------------------


@pytest.fixture
def postgres(session_databases: dict[str, TestDatabase], postgres_reason: str | None) -> TestDatabase:
    require_backend("postgresql", postgres_reason)
    return session_databases["postgresql"]


def database_dsn(db: TestDatabase) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{db.name}"


@pytest.fixture
async def resource_lock(postgres: TestDatabase) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """lock() holds an ACCESS EXCLUSIVE lock on `resource` until the test ends: every read of it waits,
    which makes a statement as slow as wanted without any test code inside the app."""
    conn = await asyncpg.connect(database_dsn(postgres))
    transaction = conn.transaction()

    async def lock() -> None:
        await transaction.start()
        await conn.execute("LOCK TABLE resource IN ACCESS EXCLUSIVE MODE")

    yield lock
    if not conn.is_closed():
        await conn.close()


async def waiting_on_locks(db: TestDatabase) -> int:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'"
        return int(await conn.fetchval(query, db.name))
    finally:
        await conn.close()


async def eventually(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_statement_over_the_timeout_answers_503(
    postgres: TestDatabase, resource_lock: Callable[[], Awaitable[None]]
) -> None:
    # 2 s rather than less: the app_client's TRUNCATE of every table runs under the same timeout
    async with app_client(postgres, db_statement_timeout_ms=2000) as (http, _):
        await resource_lock()
        started = time.perf_counter()
        outcome = assert_outcome(await asyncio.wait_for(http.get("/Patient/kari"), 20), 503)
        assert outcome["issue"][0]["code"] == "transient"
        assert 2 <= time.perf_counter() - started < 15
        assert await waiting_on_locks(postgres) == 0


def asgi_get(path: str, query: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"fhir.test")],
        "client": ("127.0.0.1", 50000),
        "server": ("fhir.test", 80),
    }


async def test_a_read_whose_client_disconnects_is_cancelled_with_its_statement(
    postgres: TestDatabase, resource_lock: Callable[[], Awaitable[None]]
) -> None:
    async with app_client(postgres) as (_http, app):  # the default statement timeout: 30 s
        await resource_lock()
        gone = asyncio.Event()
        requested = False
        sent: list[Message] = []

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        request = asyncio.create_task(app(asgi_get("/Patient", "name=kari"), receive, send))

        async def blocked() -> bool:
            return await waiting_on_locks(postgres) > 0

        assert await eventually(blocked, 10), "the search never reached the database"
        gone.set()
        await asyncio.wait_for(request, 5)  # returns at once, not when the statement times out
        assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [499]

        async def cancelled() -> bool:
            return await waiting_on_locks(postgres) == 0

        # the statement is gone from the server while the lock is still held: it was cancelled there too
        assert await eventually(cancelled, 5)


async def test_the_first_request_after_connections_were_dropped_succeeds(postgres: TestDatabase) -> None:
    async with app_client(postgres) as (http, _):
        res_id = await create(http, patient())
        await asyncio.gather(*(http.get(f"/Patient/{res_id}") for _ in range(5)))  # several pooled
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            terminated = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                postgres.name,
            )
            assert terminated > 0

            async def none_left() -> bool:
                query = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                return int(await admin.fetchval(query, postgres.name)) == 0

            assert await eventually(none_left, 5)
        finally:
            await admin.close()
        # Once the event loop has read the closed sockets (a request within that instant gets a 503 "try
        # again", not a 500), the pool replaces the connections instead of handing them out.
        await asyncio.sleep(0.2)
        response = await http.get(f"/Patient/{res_id}")
        assert response.status_code == 200, response.text
        assert (
            await http.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
        ).status_code == 201
