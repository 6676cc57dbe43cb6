"""SQLAlchemy's aiosqlite adapter with one trip to the connection's thread per statement.

aiosqlite runs every sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes four calls
per statement (open a cursor, execute, fetch the rows, close the cursor): four hand-overs between the
event loop and that thread, each a pair of context switches and a wake-up of the loop, for a primary-key
read that SQLite itself answers in a few microseconds. Here the four run as one function on that thread.
Everything else (connections, transactions, errors, server-side cursors) is the stock adapter's.

It relies on aiosqlite's Connection._execute (queue a function on the connection's thread), which the
stock adapter's isolation-level setter reaches past too; tests/store/test_sqlite_driver.py pins the
behaviour it needs.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, int | None]  # description, rows, rowcount, lastrowid


def _run(connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: the whole statement, rows included."""
    cursor: sqlite3.Cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement runs in one call on the connection's thread."""

    __slots__ = ("_outcome",)

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened here (the stock adapter's first trip).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows = collections.deque()
        self._outcome: _Outcome = (None, [], -1, None)

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[2]

    @property
    def lastrowid(self) -> Any:
        return self._outcome[3]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # rows are always fetched whole

    async def _async_soft_close(self) -> None:
        return  # nothing stays open on the connection's thread

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            await_(self._statement(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            await_(self._statement(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _statement(self, operation: str, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await self._connection._execute(
                _run, self._connection, operation, parameters, many
            )
        self._outcome = outcome
        self._rows = collections.deque(outcome[1])


Step = tuple[str, Any, bool]  # sql, parameters (a sequence of rows when many), many


def run_steps(conn: sqlite3.Connection, steps: Sequence[Step]) -> None:
    """On the connection's own thread: statements without results, one after the other."""
    for operation, parameters, many in steps:
        if many:
            conn.executemany(operation, parameters)
        else:
            conn.execute(operation, parameters)


def _run_steps(connection: aiosqlite.Connection, steps: Sequence[Step]) -> None:
    run_steps(connection._conn, steps)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass; mypy compares __init__

    def run_steps(self, steps: Sequence[Step]) -> None:
        """Statements without results, in one trip to the connection's thread (row_writes.py)."""
        try:
            await_(self._run_steps(steps))
        except Exception as error:
            self._handle_exception(error)

    async def _run_steps(self, steps: Sequence[Step]) -> None:
        async with self._execute_mutex:
            await self._connection._execute(_run_steps, self._connection, steps)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module of SQLAlchemy's aiosqlite dialect, handing out OneTripConnections (passed to
    create_async_engine as `module`)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)
