"""DriverStatement: a statement compiled once per dialect gives what SQLAlchemy's execute gives, on both
databases, with SQLAlchemy's error handling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Integer, String, bindparam, cast, func, insert, literal, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.driver_sql import DriverStatement
from app.store.engine import Database
from app.store.tables import resource
from tests.conftest import require_backend
from tests.databases import TestDatabase

AT = datetime(2026, 12, 6, 14, 30, 15, 123456, tzinfo=UTC)
ID = bindparam("res_id", type_=String())
# The same parameter twice, a literal of the statement's own, a typed timestamp and a boolean column.
STATEMENT = select(
    resource.c.version,
    resource.c.last_updated,
    resource.c.deleted,
    resource.c.content,
    literal("Patient").label("kind"),
    (resource.c.last_updated <= bindparam("at", type_=resource.c.last_updated.type)).label("before"),
).where(resource.c.res_type == "DriverTest", resource.c.res_id == ID, resource.c.res_id.in_([ID, "x"]))


async def _in_rolled_back_unit(db: Database, body: Callable[[AsyncConnection], Awaitable[None]]) -> None:
    """Run `body(conn)` in a write transaction holding one resource row, then roll it back."""
    async with db.write_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            row = {"res_type": "DriverTest", "res_id": "d1", "version": 3, "last_updated": AT}
            await conn.execute(insert(resource), {**row, "deleted": False, "content": b'{"a":1}'})
            await body(conn)
        finally:
            await transaction.rollback()


async def test_rows_equal_what_sqlalchemy_returns(database: Database) -> None:
    driver = DriverStatement(STATEMENT)
    params = {"res_id": "d1", "at": datetime(2027, 1, 1, tzinfo=UTC)}

    async def body(conn: AsyncConnection) -> None:
        expected = [tuple(row) for row in (await conn.execute(STATEMENT, params)).all()]
        rows = await driver.all(conn, params)  # the unit's own uncommitted row: same transaction
        assert [tuple(row) for row in rows] == expected
        assert rows[0][:5] == (3, AT, False, b'{"a":1}', "Patient")
        assert rows[0][1].tzinfo is not None
        assert bool(rows[0][5]) is True
        assert await driver.all(conn, {"res_id": "nobody", "at": AT}) == []

    await _in_rolled_back_unit(database, body)


async def test_a_missing_parameter_is_refused_before_the_database_sees_it(database: Database) -> None:
    async with database.read_engine.connect() as conn:
        with pytest.raises(ValueError, match="missing statement parameters: at"):
            await DriverStatement(STATEMENT).all(conn, {"res_id": "d1"})


async def test_an_expanding_parameter_is_refused() -> None:
    statement = select(resource.c.pk).where(resource.c.res_id.in_(bindparam("ids", expanding=True)))
    database = Database("sqlite+aiosqlite://")
    try:
        async with database.read_engine.connect() as conn:
            with pytest.raises(ValueError, match="expanding"):
                await DriverStatement(statement).all(conn, {"ids": ["a"]})
    finally:
        await database.dispose()


async def test_a_literal_converted_on_binding_is_bound_by_the_name_the_sql_uses(database: Database) -> None:
    # A timestamp literal (SQLite converts it to text): compiled.binds also keeps it under an anonymous
    # key that no argument has; looked up under that key it failed with a KeyError.
    statement = select(resource.c.res_id).where(
        resource.c.res_type == "DriverTest", resource.c.last_updated <= AT
    )

    async def body(conn: AsyncConnection) -> None:
        assert [tuple(row) for row in await DriverStatement(statement).all(conn, {})] == [("d1",)]

    await _in_rolled_back_unit(database, body)


async def test_runs_on_says_no_for_a_statement_with_an_expanding_parameter_and_remembers_it() -> None:
    expanding = DriverStatement(select(resource.c.pk).where(resource.c.res_id.in_(["a", "b"])))
    plain = DriverStatement(select(resource.c.pk).where(resource.c.res_id == ID))
    database = Database("sqlite+aiosqlite://")
    try:
        dialect = database.read_engine.dialect
        assert not expanding.runs_on(dialect)
        assert not expanding.runs_on(dialect)
        assert plain.runs_on(dialect)
    finally:
        await database.dispose()


async def test_a_database_error_is_a_dbapi_error_and_the_connection_stays_usable(
    database: Database, backend: str
) -> None:
    value = bindparam("value", type_=String())
    failing = select(cast(value, Integer)) if backend == "postgresql" else select(func.json(value))
    async with database.read_engine.connect() as conn:
        with pytest.raises(DBAPIError):
            await DriverStatement(failing).all(conn, {"value": "not a number, not JSON"})
    async with database.read_engine.connect() as conn:
        assert await DriverStatement(select(literal(1))).all(conn, {}) == [(1,)]


async def test_a_cancelled_statement_leaves_the_pool_working(
    session_databases: dict[str, TestDatabase], postgres_reason: str | None
) -> None:
    """A request cancelled mid-statement (the client left: app/disconnect.py) must not hand a busy
    connection back to the pool: the next user of a pool of one gets a working connection. (PostgreSQL
    only: an SQLite statement cannot be interrupted from the event loop.)"""
    require_backend("postgresql", postgres_reason)
    database = Database(session_databases["postgresql"].url, pool_size=1, max_overflow=0)
    try:
        sleep = DriverStatement(select(func.pg_sleep(bindparam("s", type_=Integer()))))

        async def slow() -> None:
            async with database.read_engine.connect() as conn:
                await sleep.all(conn, {"s": 5})

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with database.read_engine.connect() as conn:
            assert await DriverStatement(select(literal(2))).all(conn, {}) == [(2,)]
    finally:
        await database.dispose()
