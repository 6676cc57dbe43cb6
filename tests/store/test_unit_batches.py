"""Rows batched to the end of a unit of work (Repository.batch_in_unit): written once, in one call, just
before the unit commits; rolled back with it; refused for a connection that is not the unit's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.engine import Database
from app.store.jobs import JobStore
from app.store.repository import _BATCHES, Repository, _UnitBatches
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


async def test_a_task_started_during_the_unit_does_not_keep_its_rows(database: Database) -> None:
    """A task copies the context it starts in, the unit's batches with it; once the unit is over they are
    empty, so a long-lived task started mid-unit keeps no rows alive."""
    repo = Repository(database)
    seen: list[Any] = []

    async def write(conn: AsyncConnection, rows: list[Any]) -> None:
        seen.extend(rows)

    release = asyncio.Event()

    async def long_lived() -> object:
        await release.wait()
        return _BATCHES.get()

    async with repo.writer() as conn:
        assert Repository.batch_in_unit(conn, "rows", write, [{"big": "row"}])
        task = asyncio.create_task(long_lived())
    assert seen == [{"big": "row"}]
    release.set()
    kept = await task
    assert isinstance(kept, _UnitBatches)
    assert kept.batches == {}


async def test_rows_batched_while_the_batches_are_written_are_written_too(database: Database) -> None:
    """A batched write that derives more (a resource written at the end of the unit, with its own audit
    rows and references to check) batches them while the unit is being flushed: they are written in a
    next round, also into a kind whose batch was already written, before the unit commits."""
    repo = Repository(database)
    written: dict[str, list[Any]] = {"audit": [], "derived": []}

    async def audit(conn: AsyncConnection, rows: list[Any]) -> None:
        written["audit"].append(list(rows))

    async def derive(conn: AsyncConnection, rows: list[Any]) -> None:
        written["derived"].append(list(rows))
        assert Repository.batch_in_unit(conn, "audit", audit, [f"audit of {r}" for r in rows])

    async with repo.writer() as conn:
        assert Repository.batch_in_unit(conn, "audit", audit, ["audit of the write"])
        assert Repository.batch_in_unit(conn, "derived", derive, ["m1"])
    assert written == {"audit": [["audit of the write"], ["audit of m1"]], "derived": [["m1"]]}


async def test_the_unit_keeps_what_it_wrote_with_the_token_rows(database: Database) -> None:
    """Repository.unit_writes: each resource written in the unit, in order, with its token rows (none once
    deleted); None for a connection that is not the unit's."""
    repo = Repository(database)
    token = {"res_type": "Basic", "param": "code", "hash_identity": 1, "system": "urn:x", "code": "a"}
    token.update(hash_value=2, hash_sys_value=3, hash_sys=4)
    suffix = datetime.now(UTC).strftime("%H%M%S%f")
    async with repo.writer() as conn:
        assert Repository.unit_writes(conn) == []
        first = await repo.insert(conn, "Basic", f"w1-{suffix}", b"{}", AT, "POST", {"idx_token": [token]})
        (second,) = await repo.insert_many(conn, [("Basic", f"w2-{suffix}", b"{}")], AT, "POST")
        await repo.insert_index_many(conn, [(second, {"idx_token": [token]})])
        await repo.replace(conn, first, None, AT, "DELETE", {})
        written = Repository.unit_writes(conn)
        assert written is not None
        assert [(t, i, len(rows)) for t, i, rows in written] == [
            ("Basic", f"w1-{suffix}", 1),
            ("Basic", f"w2-{suffix}", 1),
            ("Basic", f"w1-{suffix}", 0),
        ]
        async with database.engine.connect() as other:
            assert Repository.unit_writes(other) is None
