"""Reads from a real PostgreSQL streaming replica (DATABASE_READ_URL; the harness starts it with
.ci/replica): callers' reads are served by the replica, a caller's reads right after its own write by
the primary until the replica has replayed it, and the server's own reads always by the primary. Replay
is paused on the replica to make the difference visible."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import create_app
from app.store.replica import ReadRouting, _lsn, acting_for
from tests.conftest import BASE, empty_tables, make_settings
from tests.databases import (
    ADMIN_DSN,
    REPLICA_ADMIN_DSN,
    REQUIRE_POSTGRES,
    TestDatabase,
    replica_unavailable_reason,
    replica_url,
)
from tests.fhir.fixtures import patient
from tests.security.helpers import auth_header

JSON = {"Content-Type": "application/fhir+json"}


def test_wal_positions_compare_as_numbers() -> None:
    assert _lsn("0/21000000") < _lsn("0/A1000000") < _lsn("1/0") < _lsn("16/B374D848")
    assert _lsn(None) == 0


@pytest.fixture(scope="module")
def replica(postgres_reason: str | None) -> None:
    if postgres_reason:
        pytest.skip(f"{postgres_reason}; the replica is of that PostgreSQL")
    reason = replica_unavailable_reason()
    if reason and REQUIRE_POSTGRES:
        pytest.fail(f"HELSEBRO_REQUIRE_POSTGRES is set but {reason}")
    if reason:
        pytest.skip(reason)


@asynccontextmanager
async def paused_replay() -> AsyncIterator[None]:
    """Stop the replica replaying the primary's WAL for the block (it still receives it).

    It first lets the replica replay everything the primary has written: paused in the middle of an
    earlier transaction (the fixture's TRUNCATE, say), the replica would hold that transaction's
    ACCESS EXCLUSIVE locks for the whole block, and reads of the replica would wait on them until the
    statement timeout (503)."""
    primary = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        written = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await primary.close()
    conn = await asyncpg.connect(REPLICA_ADMIN_DSN, timeout=5)
    try:
        deadline = time.monotonic() + 30
        while _lsn(await conn.fetchval("SELECT pg_last_wal_replay_lsn()::text")) < _lsn(written):
            assert time.monotonic() < deadline, "the replica did not catch up with the primary"
            await asyncio.sleep(0.01)
        await conn.execute("SELECT pg_wal_replay_pause()")
        while True:  # the pause takes effect between two WAL records
            if await conn.fetchval("SELECT pg_get_wal_replay_pause_state()") == "paused":
                break
            await asyncio.sleep(0.01)
        yield
    finally:
        await conn.execute("SELECT pg_wal_replay_resume()")
        await conn.close()


@pytest.fixture
async def replicated_app(
    replica: None, session_databases: dict[str, TestDatabase], dev_key_file: Path
) -> AsyncIterator[FastAPI]:
    db = session_databases["postgresql"]
    settings = make_settings(
        db.url,
        database_read_url=replica_url(db),
        auth_mode="jwt",
        auth_dev_issuer=True,
        auth_dev_key_file=str(dev_key_file),
        db_pool_size=4,
    )
    app = create_app(settings)
    await empty_tables(app, "postgresql")
    try:
        yield app
    finally:
        await app.state.security.close()
        await app.state.database.dispose()


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "the replica did not catch up"
        await asyncio.sleep(0.05)


async def test_callers_read_the_replica_and_their_own_writes_from_the_primary(
    replicated_app: FastAPI, mint: Callable[..., str]
) -> None:
    writer = auth_header(mint(subject="writer", scopes="system/*.cruds", client_id="writer"))
    reader = auth_header(mint(subject="reader", scopes="system/*.cruds", client_id="reader"))
    transport = httpx.ASGITransport(app=replicated_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:

        async def readable(url: str, who: dict[str, str]) -> bool:
            return (await http.get(url, headers=who)).status_code == 200

        async with paused_replay():
            body = orjson.dumps({**patient(), "id": "ryw"})
            assert (
                await http.put("/Patient/ryw", content=body, headers={**writer, **JSON})
            ).status_code == 201
            # the writer reads its own write (from the primary) ...
            assert await readable("/Patient/ryw", writer)
            found = await http.get("/Patient", params={"_id": "ryw"}, headers=writer)
            assert found.json()["total"] == 1
            # ... another caller reads the replica, which has not replayed it
            assert (await http.get("/Patient/ryw", headers=reader)).status_code == 404
            # the server's own work reads the primary
            async with replicated_app.state.fhir.repo.reader() as conn:
                assert await replicated_app.state.fhir.repo.current(conn, "Patient", "ryw") is not None
        await _eventually(lambda: readable("/Patient/ryw", reader))

        # once the replica has the writer's write, the writer reads the replica again
        async with paused_replay():
            body = orjson.dumps({**patient(given="Ola"), "id": "other"})
            assert (
                await http.put("/Patient/other", content=body, headers={**reader, **JSON})
            ).status_code == 201
            assert await readable("/Patient/other", reader)
            assert (await http.get("/Patient/other", headers=writer)).status_code == 404
        await _eventually(lambda: readable("/Patient/other", writer))


async def test_a_write_whose_position_cannot_be_read_keeps_its_caller_on_the_primary() -> None:
    # Nothing listens on port 1: reading the primary's WAL position fails after the write has committed.
    unreachable = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    replica = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/replica")
    routing = ReadRouting(unreachable, replica)
    try:
        with acting_for("caller:a"):
            await routing.wrote()  # logged, not raised: the write must not be answered as failed
            assert await routing.engine_for_read() is unreachable
        with acting_for("caller:b"):
            assert await routing.engine_for_read() is replica  # other callers are not held back
        assert await routing.engine_for_read() is unreachable  # the server's own reads: the primary
    finally:
        await unreachable.dispose()
        await replica.dispose()
