"""Rows batched to the end of a unit of work (Repository.batch_in_unit): written once, in one call, just
before the unit commits; rolled back with it; refused for a connection that is not the unit's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.engine import Database
from app.store.jobs import JobStore
from app.store.repository import Repository
from app.store.tables import job, job_output

AT = datetime(2026, 12, 6, tzinfo=UTC)


async def _jobs(database: Database) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(job))).scalar_one())


async def test_batched_rows_are_written_once_at_the_end_of_the_unit(database: Database) -> None:
    repo = Repository(database)
    async with database.engine.begin() as conn:
        await conn.execute(delete(job_output))
        await conn.execute(delete(job))
    calls: list[list[Any]] = []

    async def write(conn: AsyncConnection, ids: list[Any]) -> None:
        calls.append(list(ids))
        for job_id in ids:
            await JobStore().add(conn, job_id, "reindex", "r", {}, None, AT)

    async with repo.writer() as conn:
        assert Repository.batch_in_unit(conn, "jobs", write, ["a", "b"])
        assert Repository.batch_in_unit(conn, "jobs", write, ["c"])
        assert calls == []  # nothing yet: at the end of the unit
        async with database.engine.connect() as other:
            assert not Repository.batch_in_unit(other, "jobs", write, ["x"])  # not the unit's connection
    assert calls == [["a", "b", "c"]]
    assert await _jobs(database) == 3

    async def failing_unit() -> None:
        async with repo.writer() as conn:
            assert Repository.batch_in_unit(conn, "jobs", write, ["d"])
            raise RuntimeError("the unit fails")

    with pytest.raises(RuntimeError):
        await failing_unit()
    assert calls == [["a", "b", "c"]]  # a failed unit writes nothing of its batch
    assert await _jobs(database) == 3
