"""Serving on several processes (app.serve): WORKERS needs PostgreSQL, and every invariant holds across
processes. Three real server processes share one PostgreSQL database: one `python -m app.serve` with
WORKERS=2 and one with WORKERS=1 (as a second host behind a load balancer would be). Requests are spread
over both; the database alone must keep concurrent If-Match writers, conditional creates, the job and
subscription leases and emergency-access grants correct, and every process must accept the same tokens."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from app.config import Settings
from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr
from app.serve import banner, check
from tests.databases import TestDatabase, create_database, drop_database
from tests.fhir.fixtures import observation, patient
from tests.fhir.jobs.conftest import wait_finished
from tests.fhir.subscriptions.conftest import Receiver, subscription
from tests.security.helpers import auth_header

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://fhir.test"
TIMEOUT = 30.0
JSON = {"Content-Type": "application/fhir+json"}


def test_more_than_one_worker_needs_postgresql() -> None:
    sqlite = Settings(database_url="sqlite+aiosqlite:///./x.db", workers=2)
    assert "PostgreSQL" in (check(sqlite) or "")
    assert check(Settings(database_url="sqlite+aiosqlite:///./x.db", workers=1)) is None
    assert check(Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1/x", workers=4)) is None
    assert check(Settings(workers=0)) is not None


def test_the_banner_says_where_things_are_and_how_to_get_in() -> None:
    demo = banner(Settings(auth_dev_issuer=True, base_url="http://127.0.0.1:8080"), "127.0.0.1", 8080)
    assert "http://127.0.0.1:8080/docs" in demo
    assert "make -s token" in demo
    assert "Citizen portal: http://127.0.0.1:8080/portal (sign in as a demo citizen)" in demo
    assert "AUTH_MODE=off" not in demo  # authentication is on: nothing may say otherwise
    off = banner(Settings(auth_mode="off"), "0.0.0.0", 9000)
    assert "http://0.0.0.0:9000/metadata" in off
    assert "AUTH_MODE=off" in off
    production = banner(Settings(base_url="https://fhir.example.no", workers=4), "0.0.0.0", 80)
    assert "https://fhir.example.no (4 processes)" in production
    assert "trusted issuer" in production
    assert "https://fhir.example.no/portal (its demo sign-in needs AUTH_DEV_ISSUER=true" in production
    assert "(sign in as a demo citizen)" not in off  # authentication off: no citizen to be


def test_the_command_refuses_workers_on_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "WORKERS": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "app.serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(db: TestDatabase, workers: int, key_file: Path, receiver_host: str, log: Path) -> Server:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "WORKERS": str(workers),
        "BASE_URL": BASE,
        "AUTH_MODE": "jwt",
        "AUTH_DEV_ISSUER": "true",
        "AUTH_DEV_KEY_FILE": str(key_file),
        "LOG_LEVEL": "INFO",
        "DB_POOL_SIZE": "8",
        "JOB_POLL_SECONDS": "0.1",
        "SUBSCRIPTION_POLL_SECONDS": "0.1",
        "SUBSCRIPTION_CACHE_SECONDS": "0.2",
        "SUBSCRIPTION_ENDPOINT_ALLOWLIST": receiver_host,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, f"http://127.0.0.1:{port}", log)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def servers(
    postgres_reason: str | None,
    tmp_path_factory: pytest.TempPathFactory,
    dev_key_file: Path,
    receiver: Receiver,
) -> Iterator[list[Server]]:
    if postgres_reason:
        pytest.skip(f"{postgres_reason}; several processes need PostgreSQL")
    tmp = tmp_path_factory.mktemp("serve")
    db = create_database("postgresql", tmp)
    started = [
        _start(db, 2, dev_key_file, "127.0.0.1", tmp / "a.log"),
        _start(db, 1, dev_key_file, "127.0.0.1", tmp / "b.log"),
    ]
    try:
        deadline = time.monotonic() + 60
        for server in started:
            while True:
                assert server.process.poll() is None, server.log.read_text()[-3000:]
                try:
                    if httpx.get(f"{server.url}/metadata", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, server.log.read_text()[-3000:]
                time.sleep(0.1)
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(20)
            except subprocess.TimeoutExpired:
                server.process.kill()
        drop_database(db)


@pytest.fixture
async def clients(servers: list[Server]) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with (
        httpx.AsyncClient(base_url=servers[0].url, timeout=30) as a,
        httpx.AsyncClient(base_url=servers[1].url, timeout=30) as b,
    ):
        yield [a, b]


@pytest.fixture
def system(mint: Callable[..., str]) -> dict[str, str]:
    return auth_header(mint(subject="integration", scopes="system/*.cruds", client_id="integration"))


def test_workers_run_as_processes_of_their_own(servers: list[Server]) -> None:
    assert len(_children(servers[0].process.pid)) >= 2  # uvicorn's supervisor and its two workers


async def test_concurrent_if_match_writers_have_one_winner(
    clients: list[httpx.AsyncClient], system: dict[str, str]
) -> None:
    created = await clients[0].post("/Patient", content=orjson.dumps(patient()), headers={**system, **JSON})
    body = created.json()

    async def put(n: int) -> int:
        changed = {**body, "name": [{"family": "Nordmann", "given": [f"Skriver{n}"]}]}
        headers = {**system, **JSON, "If-Match": 'W/"1"'}
        answer = await clients[n % 2].put(
            f"/Patient/{body['id']}", content=orjson.dumps(changed), headers=headers
        )
        return answer.status_code

    statuses = Counter(await asyncio.gather(*(put(n) for n in range(16))))
    assert statuses[200] == 1
    assert set(statuses) <= {200, 409, 412}
    assert (await clients[1].get(f"/Patient/{body['id']}", headers=system)).json()["meta"]["versionId"] == "2"


async def test_concurrent_conditional_creates_make_one_resource(
    clients: list[httpx.AsyncClient], system: dict[str, str]
) -> None:
    fnr = synthetic_fnr(2, 3, 1990, 411)
    body = orjson.dumps(patient(fnr=fnr))
    headers = {**system, **JSON, "If-None-Exist": f"identifier={FNR_SYSTEM}|{fnr}"}
    answers = await asyncio.gather(
        *(clients[n % 2].post("/Patient", content=body, headers=headers) for n in range(16))
    )
    assert Counter(a.status_code for a in answers)[201] == 1
    assert {a.status_code for a in answers} <= {200, 201, 409, 412}
    found = await clients[0].get("/Patient", params={"identifier": f"{FNR_SYSTEM}|{fnr}"}, headers=system)
    assert found.json()["total"] == 1


async def test_each_job_runs_on_one_process(
    clients: list[httpx.AsyncClient], servers: list[Server], system: dict[str, str]
) -> None:
    await clients[0].put(
        "/Patient/jobs", content=orjson.dumps({**patient(), "id": "jobs"}), headers={**system, **JSON}
    )
    kick_offs = [
        await clients[n % 2].get("/Patient/$export", headers={**system, "Prefer": "respond-async"})
        for n in range(6)
    ]
    status_urls = [k.headers["Content-Location"].replace(BASE, "") for k in kick_offs]
    counted = await clients[0].get("/Patient", params={"_summary": "count"}, headers=system)
    patients = counted.json()["total"]  # the module's processes share one database
    for url in status_urls:
        assert (await wait_finished(clients[0], url, system)).status_code == 200
    logs = "".join(s.log.read_text() for s in servers)
    for url in status_urls:
        job_id = url.rsplit("/", 1)[1]
        assert logs.count(f"job {job_id} (export) started") == 1
        manifest = (await clients[1].get(url, headers=system)).json()
        assert [o["count"] for o in manifest["output"] if o["type"] == "Patient"] == [patients]


async def test_each_notification_is_delivered_once(
    clients: list[httpx.AsyncClient], system: dict[str, str], receiver: Receiver
) -> None:
    receiver.requests.clear()
    hook = subscription(f"http://127.0.0.1:{receiver.port}/fhir", criteria="Observation?code=8867-4")
    assert (
        await clients[0].post("/Subscription", content=orjson.dumps(hook), headers={**system, **JSON})
    ).status_code == 201
    await asyncio.sleep(0.5)  # every process's subscription cache has seen it
    await clients[1].put(
        "/Patient/hooked", content=orjson.dumps({**patient(), "id": "hooked"}), headers={**system, **JSON}
    )
    for n in range(8):
        body = {**observation("Patient/hooked"), "id": f"puls-{n}"}
        await clients[n % 2].put(
            f"/Observation/puls-{n}", content=orjson.dumps(body), headers={**system, **JSON}
        )
    await receiver.wait_for(8)
    await asyncio.sleep(1.0)  # time for a duplicate to arrive, if any process sent one
    paths = Counter(r.path for r in receiver.requests)
    assert paths == Counter(f"/fhir/Observation/puls-{n}" for n in range(8))


async def test_an_emergency_grant_holds_on_every_process(
    clients: list[httpx.AsyncClient], system: dict[str, str], mint: Callable[..., str]
) -> None:
    await clients[0].put(
        "/Patient/akutt", content=orjson.dumps({**patient(), "id": "akutt"}), headers={**system, **JSON}
    )
    doctor = auth_header(
        mint(subject="hpr-9144897", scopes="user/*.rs", hpr="9144897", orgnr="974705788", category="LE")
    )
    query = {"patient": "Patient/akutt"}
    assert (await clients[1].get("/Observation", params=query, headers=doctor)).status_code == 403
    emergency = {**doctor, "nhn-emergency-reason": "Bevisstlos pasient i akuttmottaket"}
    assert (await clients[0].get("/Observation", params=query, headers=emergency)).status_code == 200
    # the grant is in the database: the other process honours it without the reason being stated again
    assert (await clients[1].get("/Observation", params=query, headers=doctor)).status_code == 200
    colleague = auth_header(
        mint(subject="hpr-9144898", scopes="user/*.rs", hpr="9144898", orgnr="974705788", category="LE")
    )
    assert (await clients[1].get("/Observation", params=query, headers=colleague)).status_code == 403


async def test_every_process_accepts_and_refuses_the_same_tokens(
    clients: list[httpx.AsyncClient], system: dict[str, str], mint: Callable[..., str]
) -> None:
    expired = auth_header(
        mint(subject="integration", scopes="system/*.rs", expires_at=int(time.time()) - 3600)
    )
    for http in clients:
        for _ in range(3):  # the second request on each process is answered from its token cache
            assert (await http.get("/Patient", headers=system)).status_code == 200
            assert (await http.get("/Patient", headers=expired)).status_code == 401


async def test_a_reindex_on_one_process_brings_its_search_parameters_to_all(
    clients: list[httpx.AsyncClient], system: dict[str, str]
) -> None:
    parameter = {
        "resourceType": "SearchParameter",
        "id": "patient-kallenavn",
        "url": "http://helsebro.example/fhir/SearchParameter/patient-kallenavn",
        "name": "kallenavn",
        "status": "active",
        "description": "A nickname of the patient",
        "code": "kallenavn",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name.where(use='nickname').given",
    }
    named = {**patient(), "id": "kallenavn", "name": [{"use": "nickname", "given": ["Kajsa"]}]}
    await clients[0].put("/Patient/kallenavn", content=orjson.dumps(named), headers={**system, **JSON})
    url = "/SearchParameter/patient-kallenavn"
    await clients[0].put(url, content=orjson.dumps(parameter), headers={**system, **JSON})
    strict = {**system, "Prefer": "handling=strict"}
    assert (
        await clients[1].get("/Patient", params={"kallenavn": "kajsa"}, headers=strict)
    ).status_code == 400

    kick_off = await clients[0].post("/$reindex", headers={**system, "Prefer": "respond-async"})
    status_url = kick_off.headers["Content-Location"].replace(BASE, "")
    assert (await wait_finished(clients[0], status_url, system)).status_code == 200
    deadline = time.monotonic() + TIMEOUT
    # every process follows: the other host's searches and CapabilityStatement know the parameter
    while True:
        found = await clients[1].get("/Patient", params={"kallenavn": "kajsa"}, headers=strict)
        if found.status_code == 200:
            break
        assert time.monotonic() < deadline, "the other process did not take the new search parameter"
        await asyncio.sleep(0.1)
    assert [e["resource"]["id"] for e in found.json()["entry"]] == ["kallenavn"]
    statement = (await clients[1].get("/metadata")).json()
    caps = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "kallenavn" in {p["name"] for p in caps["searchParam"]}
