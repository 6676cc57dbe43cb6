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

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.type_api import _BindProcessorType

from app.store.sqlite_connection import connect

_Prepared = tuple[str, list[tuple[Any, ...]]]
_Statement = tuple[str, list[tuple[str, "_BindProcessorType[Any] | None"]]]


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
        self._statements: dict[str, _Statement] = {}

    def _statement(self, table: Table) -> _Statement:
        """The INSERT of every column of `table`, and each column's bind processing as SQLAlchemy does
        it (so what is stored is what SQLAlchemy's own insert would store)."""
        known = self._statements.get(table.name)
        if known is None:
            columns = list(table.columns)
            sql = str(insert(table).values({c.name: None for c in columns}).compile(dialect=self._dialect))
            processors = [
                (c.name, c.type.dialect_impl(self._dialect).bind_processor(self._dialect)) for c in columns
            ]
            known = (sql, processors)
            self._statements[table.name] = known
        return known

    def _prepare(self, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> list[_Prepared]:
        prepared: list[_Prepared] = []
        for table, rows in batches:
            if not rows:
                continue
            sql, processors = self._statement(table)
            prepared.append(
                (
                    sql,
                    [
                        tuple(row.get(name) if p is None else p(row.get(name)) for name, p in processors)
                        for row in rows
                    ],
                )
            )
        return prepared

    async def append(self, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> None:
        """Insert each table's rows (dicts by column name, in the order given: parents first) in one
        transaction, committed before this returns; rolled back entirely if any row fails."""
        prepared = self._prepare(batches)
        if not prepared:
            return
        async with self._write_slot():
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, prepared)

    def _write(self, prepared: Sequence[_Prepared]) -> None:
        if self._conn is None:
            self._conn = connect(self._path)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in prepared:
                conn.executemany(sql, rows)
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
