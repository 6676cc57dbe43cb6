"""Append-only batches on an SQLite file in one trip to a thread of their own.

Through SQLAlchemy and aiosqlite a batch of inserts is six trips between the event loop and a connection's
thread (BEGIN IMMEDIATE, one per statement, COMMIT, the reset when the connection goes back to the pool),
each a few tenths of a millisecond of the one core the server's Python runs on. The audit trail commits
such a batch for every few reads. Here the whole batch is one call into a thread that owns its own
connection to the same file: SQLite's work runs there, mostly outside the GIL, beside the event loop.

Only for rows nothing reads back in the same unit of work (append-only tables): the batch commits on its
own, under the process's write slot like every other SQLite writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from app.store.row_writes import RowInsert, sqlite_steps
from app.store.sqlite_connection import connect
from app.store.sqlite_driver import Step, run_steps


class SqliteAppender:
    def __init__(
        self,
        path: str,
        dialect: Dialect,
        write_slot: Callable[[], AbstractAsyncContextManager[None]],
    ) -> None:
        self._path = path
        self._write_slot = write_slot
        self._dialect = dialect
        # One thread, so the connection is only ever used by the thread that opened it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-appender")
        self._conn: sqlite3.Connection | None = None

    async def append(self, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> None:
        """Insert each table's rows (dicts by column name, every row of a table with the same keys, in
        the order given: parents first) in one transaction, committed before this returns; rolled back
        entirely if any row fails. The statements and the values' processing are row_writes' (what
        SQLAlchemy's own insert would store)."""
        steps = sqlite_steps([RowInsert(table, rows) for table, rows in batches], self._dialect)
        if not steps:
            return
        async with self._write_slot():
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, steps)

    def _write(self, steps: Sequence[Step]) -> None:
        if self._conn is None:
            self._conn = connect(self._path)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            run_steps(conn, steps)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT too: the next batch must start clean
                conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        """Close the connection (it is opened again by the next batch: a disposed Database may be used
        again, as SQLAlchemy's engines may)."""

        def close_connection() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close_connection)
