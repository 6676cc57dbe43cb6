"""A unit of work's row deletes and inserts in one trip to the database.

A write replaces a resource's rows in several side tables: its version, its search index rows (eight
tables), its access facts. Through `conn.execute` each table is one statement, and each statement a trip
(on SQLite a hand-over to the connection's thread and back, on PostgreSQL a round trip, each resumed only
when the busy event loop comes back to the request) plus SQLAlchemy's per-call work; an update of a
Patient ran sixteen such statements besides its own UPDATE. Here they are one trip in the caller's
transaction:

- SQLite: the statements run one after the other in one call on the connection's thread
  (sqlite_driver.OneTripConnection.run_steps);
- PostgreSQL: one statement, each DELETE and INSERT a data-modifying CTE, each table's rows as column
  arrays (unnest). All CTEs see the statement's one snapshot, so a table's DELETE removes only the rows
  that were there before, never those inserted beside it.

Values go through the columns' bind processing as SQLAlchemy's own execution would; errors through
SQLAlchemy's handling (IntegrityError and the rest, as from `conn.execute`). The SQL of each shape (which
tables, which columns) is built once per dialect. The audit trail's appenders use the same statements:
PostgresAppender through write_rows, SqliteAppender through sqlite_steps on a connection of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.sqlite_driver import Step

_Processor = Callable[[Any], Any] | None
_COLLATION = re.compile(r'\s+COLLATE\s+"[^"]*"')


@dataclass(frozen=True)
class RowDelete:
    """Delete the rows of `table` whose `column` equals `value`, except those whose column `keep[0]`
    equals `keep[1]` (not NULL)."""

    table: Table
    column: str
    value: Any
    keep: tuple[str, Any] | None = None

    def values(self) -> tuple[Any, ...]:
        return (self.value,) if self.keep is None else (self.value, self.keep[1])


@dataclass(frozen=True)
class RowInsert:
    """Insert `rows` (dicts by column name, every row with the same keys) into `table`."""

    table: Table
    rows: Sequence[Mapping[str, Any]]


_Step = RowDelete | RowInsert
_Shape = tuple[tuple[str, str, tuple[str, ...]], ...]  # (kind, table, columns) per step


def _processor(column: Column[Any], dialect: Dialect) -> _Processor:
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _columns(step: _Step) -> tuple[str, ...]:
    if isinstance(step, RowDelete):
        return (step.column,) if step.keep is None else (step.column, step.keep[0])
    return tuple(step.rows[0])


def _delete_sql(step: RowDelete, marks: Sequence[str]) -> str:
    sql = f'DELETE FROM "{step.table.name}" WHERE "{step.column}" = {marks[0]}'
    return sql if step.keep is None else f'{sql} AND "{step.keep[0]}" <> {marks[1]}'


@dataclass(frozen=True)
class _Plan:
    """The SQL of one shape on one dialect: SQLite, a statement per step; PostgreSQL, one statement."""

    statements: tuple[str, ...]
    processors: tuple[tuple[_Processor, ...], ...]  # per step, per column


def _sqlite_plan(steps: Sequence[_Step], dialect: Dialect) -> _Plan:
    statements, processors = [], []
    for step in steps:
        names = _columns(step)
        if isinstance(step, RowDelete):
            statements.append(_delete_sql(step, ["?"] * len(names)))
        else:
            columns = ", ".join(f'"{name}"' for name in names)
            marks = ", ".join("?" for _ in names)
            statements.append(f'INSERT INTO "{step.table.name}" ({columns}) VALUES ({marks})')
        processors.append(tuple(_processor(step.table.c[name], dialect) for name in names))
    return _Plan(tuple(statements), tuple(processors))


def _postgres_plan(steps: Sequence[_Step], dialect: Dialect) -> _Plan:
    parts, processors, position = [], [], 0
    for step in steps:
        names = _columns(step)
        if isinstance(step, RowDelete):
            marks = [f"${position + i + 1}" for i in range(len(names))]
            position += len(names)
            parts.append(_delete_sql(step, marks))
        else:
            arrays = []
            for name in names:
                position += 1
                cast = _COLLATION.sub("", step.table.c[name].type.compile(dialect=dialect))
                arrays.append(f"${position}::{cast}[]")
            columns = ", ".join(f'"{name}"' for name in names)
            parts.append(
                f'INSERT INTO "{step.table.name}" ({columns}) SELECT * FROM unnest({", ".join(arrays)})'
            )
        processors.append(tuple(_processor(step.table.c[name], dialect) for name in names))
    *first, last = parts
    ctes = ", ".join(f"step_{i} AS ({sql})" for i, sql in enumerate(first))
    return _Plan((f"WITH {ctes} {last}" if ctes else last,), tuple(processors))


_PLANS: dict[tuple[str, _Shape], _Plan] = {}


def _plan(steps: Sequence[_Step], dialect: Dialect) -> _Plan:
    shape: _Shape = tuple(
        ("d" if isinstance(s, RowDelete) else "i", s.table.name, _columns(s)) for s in steps
    )
    plan = _PLANS.get((dialect.name, shape))
    if plan is None:
        build = _postgres_plan if dialect.name == "postgresql" else _sqlite_plan
        plan = _PLANS[(dialect.name, shape)] = build(steps, dialect)
    return plan


def _present(steps: Sequence[RowDelete | RowInsert]) -> list[RowDelete | RowInsert]:
    """The steps with something to do: an insert without rows is none."""
    return [s for s in steps if isinstance(s, RowDelete) or s.rows]


def _value(process: _Processor, value: Any) -> Any:
    return value if process is None else process(value)


def sqlite_steps(steps: Sequence[RowDelete | RowInsert], dialect: Dialect) -> list[Step]:
    """The SQLite statements of `steps` with their processed parameters (for sqlite_driver.run_steps:
    through the pool's connection here, on its own connection in SqliteAppender)."""
    steps = _present(steps)
    if not steps:
        return []
    plan = _plan(steps, dialect)
    runs: list[Step] = []
    for step, sql, processors in zip(steps, plan.statements, plan.processors, strict=True):
        if isinstance(step, RowDelete):
            values = tuple(_value(p, v) for p, v in zip(processors, step.values(), strict=True))
            runs.append((sql, values, False))
        else:
            names = _columns(step)
            rows = [
                tuple(_value(p, row[name]) for name, p in zip(names, processors, strict=True))
                for row in step.rows
            ]
            runs.append((sql, rows, True))
    return runs


def _run_sqlite(connection: Connection, steps: list[Step]) -> None:
    dbapi_connection = connection.connection.dbapi_connection
    try:
        dbapi_connection.run_steps(steps)  # type: ignore[union-attr]
    except BaseException as error:
        connection._handle_dbapi_exception(error, steps[0][0], steps[0][1], None, None)
        raise  # not reached: it raises


async def write_rows(conn: AsyncConnection, steps: Sequence[RowDelete | RowInsert]) -> None:
    """Run `steps` in order, in `conn`'s transaction, in one trip (inserts without rows are skipped)."""
    dialect = conn.dialect
    if dialect.name != "postgresql":
        runs = sqlite_steps(steps, dialect)
        if runs:
            await conn.run_sync(_run_sqlite, runs)
        return
    steps = _present(steps)
    if not steps:
        return
    plan = _plan(steps, dialect)
    arguments: list[Any] = []
    for step, processors in zip(steps, plan.processors, strict=True):
        if isinstance(step, RowDelete):
            arguments += [_value(p, v) for p, v in zip(processors, step.values(), strict=True)]
            continue
        for name, process in zip(_columns(step), processors, strict=True):
            arguments.append([_value(process, row[name]) for row in step.rows])
    await conn.exec_driver_sql(plan.statements[0], tuple(arguments))
