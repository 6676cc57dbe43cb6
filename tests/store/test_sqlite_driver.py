"""The one-trip SQLite driver: what SQLAlchemy needs from a cursor, each statement in one call on the
connection's thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from app.store.engine import Database
from app.store.sqlite_connection import connect
from app.store.sqlite_driver import INLINE_MAX_VALUES, OneTripConnection


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with database.write_engine.begin() as conn:
        await conn.execute(text("create table t (id integer primary key, name text unique, n integer)"))
    try:
        yield database
    finally:
        await database.dispose()


async def test_rows_counts_ids_and_returning(database: Database) -> None:
    async with database.write_engine.begin() as conn:
        inserted = await conn.execute(text("insert into t (name, n) values ('a', 1)"))
        assert inserted.lastrowid == 1
        many = await conn.execute(
            text("insert into t (name, n) values (:name, :n)"),
            [
                {"name": "b", "n": 2},
                {"name": "c", "n": 3},
            ],
        )
        assert many.rowcount == 2
        returned = await conn.execute(text("insert into t (name, n) values ('d', 4) returning id, name"))
        assert returned.all() == [(4, "d")]
        updated = await conn.execute(text("update t set n = n + 10 where n >= 3"))
        assert updated.rowcount == 2
    async with database.read_engine.connect() as conn:
        result = await conn.execute(text("select name, n from t order by id"))
        assert list(result.keys()) == ["name", "n"]
        assert result.all() == [("a", 1), ("b", 2), ("c", 13), ("d", 14)]
        assert (await conn.execute(text("select n from t where id = 99"))).first() is None


async def insert_twice(database: Database) -> None:
    async with database.write_engine.begin() as conn:
        await conn.execute(text("insert into t (name, n) values ('x', 1)"))
        await conn.execute(text("insert into t (name, n) values ('x', 2)"))


async def select_nothing(database: Database) -> None:
    async with database.read_engine.connect() as conn:
        await conn.execute(text("select nothing from nowhere"))


async def test_errors_are_sqlalchemy_errors_and_roll_back(database: Database) -> None:
    with pytest.raises(IntegrityError):
        await insert_twice(database)
    with pytest.raises(OperationalError):
        await select_nothing(database)
    async with database.read_engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from t"))).scalar() == 0


def count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the name of the function each trip to a connection's thread runs (the driver wraps
    it in _tracked(owner, fn, ...))."""
    calls: list[str] = []
    queue_call = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object) -> object:
        inner = args[1] if getattr(fn, "__name__", "") == "_tracked" else fn
        calls.append(str(getattr(inner, "__name__", repr(inner))))
        return await queue_call(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_one_call_on_the_connections_thread_per_statement(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.read_engine.connect() as conn:
        await conn.execute(text("select 1"))  # the connection is open and checked out
        calls = count_trips(monkeypatch)
        for n in range(3):
            assert (await conn.execute(text("select :n"), {"n": n})).scalar() == n
    assert calls == ["_run", "_run", "_run"]  # and no rollback when it goes back to the pool


async def test_a_write_unit_runs_on_the_event_loop_without_trips(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.read_engine.connect() as conn:
        await conn.execute(text("select 1"))  # the pool has its connection
    calls = count_trips(monkeypatch)
    async with database.write_engine.begin() as conn:
        inserted = await conn.execute(text("insert into t (name, n) values ('a', 1) returning id"))
        assert inserted.scalar() == 1
        await conn.execute(text("update t set n = 2 where name = 'a'"))
        assert calls == []  # BEGIN IMMEDIATE, both statements inline
        rows = [{"name": f"r{i}", "n": i} for i in range(INLINE_MAX_VALUES)]  # 2 values a row: too many
        await conn.execute(text("insert into t (name, n) values (:name, :n)"), rows)
        assert calls == ["_run"]
    assert calls == ["_run"]  # the commit inline, and no rollback on the way back to the pool
    async with database.read_engine.connect() as conn:
        assert (await conn.execute(text("select count(*), max(n) from t where name = 'a'"))).one() == (1, 2)
        assert (await conn.execute(text("select count(*) from t"))).scalar() == 1 + INLINE_MAX_VALUES


async def test_a_failed_write_unit_rolls_back_inline(database: Database) -> None:
    with pytest.raises(IntegrityError):
        await insert_twice(database)
    async with database.write_engine.begin() as conn:  # the lock was released: the next unit gets it
        await conn.execute(text("insert into t (name, n) values ('x', 3)"))
    async with database.read_engine.connect() as conn:
        assert (await conn.execute(text("select n from t"))).all() == [(3,)]


async def test_a_lock_held_by_another_process_is_waited_for_off_the_event_loop(
    database: Database, tmp_path: Path
) -> None:
    other = connect(str(tmp_path / "driver.db"))  # as another process would, outside the pool
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with database.write_engine.begin() as conn:
            await conn.execute(text("insert into t (name, n) values ('w', 1)"))

    ticker = asyncio.create_task(ticking())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done()
    assert ticks >= 10  # the event loop kept running while the writer waited for the lock
    other.execute("insert into t (name, n) values ('o', 1)")
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, 10)
    ticker.cancel()
    async with database.read_engine.connect() as conn:
        assert (await conn.execute(text("select name from t order by id"))).scalars().all() == ["o", "w"]


async def test_nothing_runs_inline_while_a_trip_is_in_flight(database: Database) -> None:
    async with database.write_engine.connect() as conn:
        await conn.begin()
        driver = (await conn.get_raw_connection()).dbapi_connection
        assert isinstance(driver, OneTripConnection)
        assert driver.inline(1)
        # A statement still running on the connection's thread (say, of a cancelled request).
        slow = asyncio.ensure_future(driver.trip(time.sleep, 0.2))
        await asyncio.sleep(0.05)
        assert not driver.inline(1)
        await slow
        assert driver.inline(1)
        await conn.rollback()
