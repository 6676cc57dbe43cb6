"""Database(): the configured pool applies to SQLite files too; an in-memory database keeps its one connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from app.store.engine import Database


async def test_a_sqlite_file_uses_the_configured_pool(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/pool.db", pool_size=17, max_overflow=3)
    try:
        pool = database.engine.sync_engine.pool
        assert pool.size() == 17  # type: ignore[attr-defined]
        async with database.read_engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar() == 1
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("url", "size"),
    [
        # SQLite: each connection is a thread; a few serve reads faster than many.
        ("sqlite+aiosqlite:///{tmp}/pool.db", 6),
        # PostgreSQL: overflow connections are closed on return, so a burst would start and stop a
        # backend per request (never connected to here).
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/not-connected-to", 30),
    ],
)
async def test_the_default_pools_have_no_overflow(url: str, size: int, tmp_path: Path) -> None:
    database = Database(url.format(tmp=tmp_path))
    try:
        pool = database.engine.sync_engine.pool
        assert pool.size() == size  # type: ignore[attr-defined]
        assert pool._max_overflow == 0  # type: ignore[attr-defined]
    finally:
        await database.dispose()


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://"])
async def test_an_in_memory_database_keeps_one_connection(url: str) -> None:
    database = Database(url, pool_size=17, max_overflow=3)
    try:
        async with database.write_engine.begin() as conn:
            await conn.execute(text("create table t (x integer)"))
            await conn.execute(text("insert into t values (1)"))
        async with database.read_engine.connect() as conn:
            assert (await conn.execute(text("select x from t"))).scalar() == 1
    finally:
        await database.dispose()
