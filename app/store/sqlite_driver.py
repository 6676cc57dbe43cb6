"""SQLAlchemy's aiosqlite adapter with one trip to the connection's thread per statement.

aiosqlite runs every sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes four calls
per statement (open a cursor, execute, fetch the rows, close the cursor): four hand-overs between the
event loop and that thread, each a pair of context switches and a wake-up of the loop, for a primary-key
read that SQLite itself answers in a few microseconds. Here the four run as one function on that thread.

Inside a write transaction there is no trip at all. Helsebro's writers queue for Database.write_slot,
so the one holding BEGIN IMMEDIATE has the file to itself, and its statements (a few inserts of a
create, its commit) take microseconds in SQLite. Sending each to the thread cost more than running it:
the result came back as a callback queued behind every other request's work on the event loop, and the
write lock stayed held meanwhile. With 32 clients creating Patients, the slot was held 4.1 ms per
create, and 1 / 4.1 ms was exactly the create rate. So once the lock is held, statements, the commit
and the rollback run on the event loop's own thread. Only a statement with many rows (a large
transaction's index rows) still goes to the thread, so the event loop is never blocked for long. The
lock itself is taken inline without waiting (busy_timeout 0). If another process holds it, BEGIN
IMMEDIATE goes to the thread and waits there.

A connection returned to the pool outside a transaction needs no rollback, and gets none: that saves
one trip per unit of work and per read. Nothing runs inline while a trip of the connection is still
queued or running, for example a statement whose request was cancelled. Then the next statement queues
behind it as before, so the sqlite3 connection is never used by two threads at once.

Everything else (connections, errors, server-side cursors) is the stock adapter's. It relies on
aiosqlite's Connection._execute (queue a function on the connection's thread), which the stock adapter's
isolation-level setter reaches past too. tests/store/test_sqlite_driver.py pins the behaviour it needs.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncIODBAPIConnection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

from app.store.sqlite_connection import BUSY_TIMEOUT_MS

# A statement (or one trip's steps) binding more values than this runs on the connection's thread even in
# a write transaction: a large transaction's thousands of index rows take SQLite milliseconds, longer than
# any request should hold up the event loop. A create's rows (~200 values) stay well below it.
INLINE_MAX_VALUES = 2048

_T = TypeVar("_T")
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


def _tracked(owner: OneTripConnection, fn: Callable[..., Any], *args: Any) -> Any:
    """On the connection's thread: `fn`, then count its trip as done (only this thread writes `_done`)."""
    try:
        return fn(*args)
    finally:
        owner._done += 1


async def _at_once(fn: Callable[..., _T], *args: Any) -> _T:
    return fn(*args)


def _values(parameters: Any, many: bool) -> int:
    if not parameters:
        return 0
    if many:
        return len(parameters) * len(parameters[0])
    return len(parameters)


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
        self._run(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        self._run(operation, seq_of_parameters, True)

    def _run(self, operation: str, parameters: Any, many: bool) -> None:
        owner: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        try:
            if owner.inline(_values(parameters, many)):
                # Run by the awaiting side of the greenlet bridge, without suspending the task: SQLAlchemy's
                # AsyncConnection.execute insists on seeing an await.
                outcome = await_(_at_once(_run, self._connection, operation, parameters, many))
            else:
                outcome = await_(owner.trip(_run, self._connection, operation, parameters, many))
        except Exception as error:
            owner._handle_exception(error)
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


def _begin_immediate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    # _writing: BEGIN IMMEDIATE holds the write lock; _queued/_done: trips handed to the connection's
    # thread and trips it has finished (each written by one thread only), equal when none is in flight.
    __slots__ = ("_done", "_queued", "_writing")
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass; mypy compares __init__

    def __init__(self, dbapi: Any, connection: AsyncIODBAPIConnection) -> None:
        super().__init__(dbapi, connection)
        self._writing = False
        self._queued = 0
        self._done = 0

    def inline(self, values: int) -> bool:
        """Whether a statement binding `values` values runs on the calling (event loop) thread."""
        return self._writing and values <= INLINE_MAX_VALUES and self._queued == self._done

    async def trip(self, fn: Callable[..., _T], *args: Any) -> _T:
        """`fn(*args)` on the connection's thread, after whatever is queued there already."""
        async with self._execute_mutex:
            self._queued += 1
            result: _T = await self._connection._execute(_tracked, self, fn, *args)
            return result

    def begin_write(self) -> None:
        """BEGIN IMMEDIATE: inline when the write lock is free, else on the connection's thread, which
        waits for it up to busy_timeout (another process is writing)."""
        try:
            if self._queued == self._done and self._connection._connection is not None:
                conn = self._connection._conn
                conn.execute("PRAGMA busy_timeout=0")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    self._writing = True
                    return
                except sqlite3.OperationalError as busy:
                    if busy.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                        raise
                finally:
                    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await_(self.trip(_begin_immediate, self._connection._conn))
            self._writing = True
        except Exception as error:
            self._handle_exception(error)

    def commit(self) -> None:
        self._end(sqlite3.Connection.commit, super().commit)

    def rollback(self) -> None:
        if self._queued == self._done and (
            self._connection._connection is None or not self._connection._conn.in_transaction
        ):
            self._writing = False
            return  # nothing to roll back (a pooled connection coming back after a read or a commit)
        self._end(sqlite3.Connection.rollback, super().rollback)

    def _end(self, inline: Callable[[sqlite3.Connection], None], on_thread: Callable[[], None]) -> None:
        """Commit or roll back: inline in a write transaction with nothing in flight, else by a trip."""
        try:
            if self._writing and self._queued == self._done:
                inline(self._connection._conn)
            else:
                on_thread()
        except Exception as error:
            self._handle_exception(error)
        finally:
            self._writing = False

    def run_steps(self, steps: Sequence[Step]) -> None:
        """Statements without results (row_writes.py): inline in a write transaction, else in one trip."""
        try:
            if self.inline(sum(_values(parameters, many) for _sql, parameters, many in steps)):
                run_steps(self._connection._conn, steps)
            else:
                await_(self.trip(_run_steps, self._connection, steps))
        except Exception as error:
            self._handle_exception(error)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module of SQLAlchemy's aiosqlite dialect, handing out OneTripConnections (passed to
    create_async_engine as `module`)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)
