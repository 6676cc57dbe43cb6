"""Fixtures for subscription tests: a real HTTP receiver on 127.0.0.1 and apps whose lifespan (and so the
delivery worker) really runs, on databases of their own (so no other test's app sees their
subscriptions), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.main import create_app
from tests.conftest import BASE, make_settings
from tests.databases import BACKENDS, TestDatabase, create_database, drop_database

FHIR_JSON = {"Content-Type": "application/fhir+json"}
TIMEOUT = 15.0  # generous upper bound for a condition; tests finish as soon as it holds

# Fast retries for tests; production defaults are in app/config.py.
FAST: dict[str, object] = {
    "subscription_poll_seconds": 0.05,
    "subscription_retry_base_seconds": 0.05,
    "subscription_retry_max_seconds": 0.2,
    "subscription_max_attempts": 50,
    "subscription_timeout_seconds": 2.0,
    "subscription_cache_seconds": 0.2,
    # The receivers run on loopback, which only an allow-listed endpoint may be; receiver.example is the
    # endpoint of tests that never deliver.
    "subscription_endpoint_allowlist": "127.0.0.1,receiver.example",
}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    answered: int  # the status the receiver answered with

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    """An HTTP server in a thread that records every request and answers with `status`. stop() closes
    the port (connections are refused) and start() opens it again on the same port. With `hang` set it
    records each request and never answers (until stopped)."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.status = 200
        self.hang = False
        self._released = threading.Event()
        self.requests: list[Received] = []
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.status
                with receiver._changed:
                    receiver.requests.append(Received(self.command, self.path, headers, body, status))
                    receiver._changed.notify_all()
                if receiver.hang:
                    receiver._released.wait(60)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._released.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    async def wait_for(self, count: int, within: float = TIMEOUT) -> list[Received]:
        """At least `count` requests have arrived (or the test fails after `within` seconds)."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self.requests) >= count, within)

        assert await asyncio.to_thread(wait), f"{len(self.requests)} of {count} requests arrived"
        return list(self.requests)


def _running_receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _running_receiver()


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    """A second subscriber: what one subscriber's endpoint does must not reach another's deliveries."""
    yield from _running_receiver()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = TIMEOUT) -> None:
    """Wait until an async condition holds (re-checked every 20 ms), failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="package")
def subscription_databases(
    tmp_path_factory: pytest.TempPathFactory, postgres_reason: str | None
) -> Iterator[dict[str, TestDatabase]]:
    """One fresh database per backend for this package (created here: migrations need no running loop)."""
    tmp_dir: Path = tmp_path_factory.mktemp("subscriptions")
    databases = {
        backend: create_database(backend, tmp_dir)
        for backend in BACKENDS
        if backend == "sqlite" or not postgres_reason
    }
    yield databases
    for db in databases.values():
        drop_database(db)


AppFactory = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
async def make_app(backend: str, subscription_databases: dict[str, TestDatabase]) -> AppFactory:
    """make_app(**settings) -> async context manager of (app, client), lifespan running. The database
    is emptied once per test, before the first app starts; later apps see what earlier ones left."""
    url = subscription_databases[backend].url
    emptied = False

    @asynccontextmanager
    async def running(**overrides: object) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        nonlocal emptied
        app = create_app(make_settings(url, **{**FAST, **overrides}))
        if not emptied:
            await empty(app, backend)
            emptied = True
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                yield app, client

    return running


async def empty(app: FastAPI, backend: str) -> None:
    async with app.state.database.engine.begin() as conn:
        if backend == "postgresql":
            await conn.execute(text("TRUNCATE subscription_outbox, subscription, resource CASCADE"))
        else:
            for table in ("subscription_outbox", "subscription", "resource_version", "resource"):
                await conn.execute(text(f"DELETE FROM {table}"))


def subscription(endpoint: str, criteria: str = "Patient?family=Hansen", **channel: Any) -> dict[str, Any]:
    """A rest-hook Subscription with payload application/fhir+json; channel fields given as None are left out."""
    fields = {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json", **channel}
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Test notifications",
        "criteria": criteria,
        "channel": {k: v for k, v in fields.items() if v is not None},
    }


def patient(family: str, given: str = "Kari", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], **extra}


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    path = f"/{resource['resourceType']}/{resource['id']}"
    response = await client.put(path, json=resource, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def outbox(app: FastAPI) -> list[tuple[str, int, str, int]]:
    """(res_id, version, state, attempts) of every outbox row, in write order."""
    async with app.state.database.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT res_id, version, state, attempts FROM subscription_outbox ORDER BY id")
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows.all()]


async def all_delivered(app: FastAPI, count: int) -> bool:
    """Exactly `count` outbox rows, every one delivered."""
    rows = await outbox(app)
    return len(rows) == count and all(state == "delivered" for _, _, state, _ in rows)
