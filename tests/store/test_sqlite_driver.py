"""The one-trip SQLite driver: what SQLAlchemy needs from a cursor, each statement in one call on the
connection's thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from app.store.engine import Database


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


async def test_one_call_on_the_connections_thread_per_statement(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    queue_call = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object) -> object:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await queue_call(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    async with database.read_engine.connect() as conn:
        await conn.execute(text("select 1"))  # the connection is open and checked out
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        for n in range(3):
            assert (await conn.execute(text("select :n"), {"n": n})).scalar() == n
    assert calls[:3] == ["_run", "_run", "_run"]  # then only the connection's own reset, if any
    assert calls.count("_run") == 3
