"""Append-only batches on PostgreSQL as one statement: one round trip, its own transaction.

The audit trail commits a batch of rows into two tables for every few reads. Through a unit of work that
is five round trips (BEGIN, one INSERT per table, COMMIT, the pool's reset), each resumed only when the
busy event loop comes back to the group-commit task: a batch took ~5 ms from start to commit under load
(bench.security), and every audited response waits for its batch. Here the batch is one statement on an
autocommit connection: each table's rows as column arrays, unnested, the parents' INSERTs as
data-modifying CTEs before the last one. One statement is one transaction: every row or none, and foreign
keys between the tables are checked at its end, after all of them are in.

Only for rows nothing reads back in the same unit of work (append-only tables), as SqliteAppender.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

_Column = tuple[str, Callable[[Any], Any] | None]  # name, bind processing as SQLAlchemy does it


class PostgresAppender:
    def __init__(self, engine: AsyncEngine) -> None:
        # Autocommit: the one statement is its own transaction, with no BEGIN/COMMIT round trips.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._dialect: Dialect = engine.dialect
        self._statements: dict[tuple[str, ...], tuple[str, list[list[_Column]]]] = {}

    def _statement(self, tables: Sequence[Table]) -> tuple[str, list[list[_Column]]]:
        """The statement inserting into `tables` (parents first), and each table's columns in order."""
        key = tuple(t.name for t in tables)
        found = self._statements.get(key)
        if found is not None:
            return found
        inserts: list[str] = []
        columns: list[list[_Column]] = []
        position = 0
        for table in tables:
            names: list[str] = []
            arrays: list[str] = []
            table_columns: list[_Column] = []
            for column in table.columns:
                position += 1
                names.append(f'"{column.name}"')
                arrays.append(f"${position}::{column.type.compile(dialect=self._dialect)}[]")
                process = column.type.dialect_impl(self._dialect).bind_processor(self._dialect)
                table_columns.append((column.name, process))
            inserts.append(
                f'INSERT INTO "{table.name}" ({", ".join(names)}) SELECT * FROM unnest({", ".join(arrays)})'
            )
            columns.append(table_columns)
        *parents, last = inserts
        ctes = ", ".join(f"parent_{i} AS ({sql})" for i, sql in enumerate(parents))
        built = (f"WITH {ctes} {last}" if ctes else last, columns)
        self._statements[key] = built
        return built

    async def append(self, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> None:
        """Insert each table's rows (dicts by column name, in the order given: parents first) in one
        transaction, committed before this returns; nothing is stored if any row fails."""
        present = [(table, rows) for table, rows in batches if rows]
        if not present:
            return
        sql, columns = self._statement([table for table, _ in present])
        arguments: list[list[Any]] = []
        for (_, rows), table_columns in zip(present, columns, strict=True):
            for name, process in table_columns:
                values = [row.get(name) for row in rows]
                arguments.append(values if process is None else [process(v) for v in values])
        async with self._engine.connect() as conn:
            await conn.exec_driver_sql(sql, tuple(arguments))

    async def close(self) -> None:
        """Nothing of its own to close: the connections are the pool's."""
