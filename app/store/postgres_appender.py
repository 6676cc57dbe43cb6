"""Append-only batches on PostgreSQL as one statement: one round trip, its own transaction.

The audit trail commits a batch of rows into two tables for every few reads. Through a unit of work that
is five round trips (BEGIN, one INSERT per table, COMMIT, the pool's reset), each resumed only when the
busy event loop comes back to the group-commit task: a batch took ~5 ms from start to commit under load
(bench.security), and every audited response waits for its batch. Here the batch is row_writes' one
statement (the tables' rows as column arrays, the parents' INSERTs as data-modifying CTEs before the last
one) on an autocommit connection. One statement is one transaction: every row or none, and foreign keys
between the tables are checked at its end, after all of them are in.

Only for rows nothing reads back in the same unit of work (append-only tables), as SqliteAppender.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from app.store.row_writes import RowInsert, write_rows


class PostgresAppender:
    def __init__(self, engine: AsyncEngine) -> None:
        # Autocommit: the one statement is its own transaction, with no BEGIN/COMMIT round trips.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def append(self, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> None:
        """Insert each table's rows (dicts by column name, every row of a table with the same keys, in
        the order given: parents first) in one transaction, committed before this returns; nothing is
        stored if any row fails."""
        steps = [RowInsert(table, rows) for table, rows in batches if rows]
        if not steps:
            return
        async with self._engine.connect() as conn:
            await write_rows(conn, steps)

    async def close(self) -> None:
        """Nothing of its own to close: the connections are the pool's."""
