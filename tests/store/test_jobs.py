"""JobStore: claims are exclusive, a lease guards every later write, and an ended lease lets another
process take the job over (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from app.store.engine import Database
from app.store.jobs import CANCELLED, COMPLETED, QUEUED, RUNNING, JobStore
from app.store.tables import job, job_output

STORE = JobStore()
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def _fresh(database: Database) -> str:
    job_id = uuid.uuid4().hex
    async with database.engine.begin() as conn:
        await conn.execute(delete(job_output))
        await conn.execute(delete(job))
        await STORE.add(conn, job_id, "export", "http://fhir.test/$export", {"types": ["Patient"]}, None, T0)
    return job_id


async def test_a_claim_is_exclusive_until_the_lease_ends(database: Database) -> None:
    job_id = await _fresh(database)
    async with database.engine.begin() as conn:
        first = await STORE.claim(conn, T0, "a" * 32, T0 + timedelta(seconds=60))
        assert first is not None
        assert first.id == job_id
        assert first.status == RUNNING
        assert first.params == {"types": ["Patient"]}
        assert first.state == {}
        # a second process sees nothing to run while the lease holds
        assert (
            await STORE.claim(conn, T0 + timedelta(seconds=30), "b" * 32, T0 + timedelta(seconds=90)) is None
        )
        assert not await STORE.has_runnable(conn, T0 + timedelta(seconds=30))
        # the holder renews it with its checkpoint; a stranger's checkpoint is refused
        assert await STORE.checkpoint(conn, job_id, "a" * 32, T0 + timedelta(seconds=120), {"i": 1}, "1", T0)
        assert not await STORE.checkpoint(
            conn, job_id, "b" * 32, T0 + timedelta(seconds=120), {"i": 9}, "9", T0
        )
        # after the lease ends another process takes it over, from the last checkpoint
        later = T0 + timedelta(seconds=121)
        assert await STORE.has_runnable(conn, later)
        taken = await STORE.claim(conn, later, "b" * 32, later + timedelta(seconds=60))
        assert taken is not None
        assert taken.state == {"i": 1}
        assert taken.progress == "1"
        # the first holder, back from a stall, can no longer write anything
        assert not await STORE.checkpoint(conn, job_id, "a" * 32, later, {"i": 2}, "2", later)
        assert not await STORE.finish(conn, job_id, "a" * 32, COMPLETED, {}, None, later)
        assert await STORE.finish(conn, job_id, "b" * 32, COMPLETED, {"ok": True}, "done", later)
        done = await STORE.get(conn, job_id)
    assert done is not None
    assert done.status == COMPLETED
    assert done.result == {"ok": True}


async def test_cancel_stops_the_holder_and_drops_the_files(database: Database) -> None:
    job_id = await _fresh(database)
    async with database.engine.begin() as conn:
        assert await STORE.claim(conn, T0, "a" * 32, T0 + timedelta(seconds=60)) is not None
        await STORE.add_output(conn, job_id, 1, "Patient", 2, b'{"a":1}\n{"b":2}\n')
        assert [(f.seq, f.res_type, f.count) for f in await STORE.outputs(conn, job_id)] == [
            (1, "Patient", 2)
        ]
        assert await STORE.output(conn, job_id, 1) == b'{"a":1}\n{"b":2}\n'
        await STORE.cancel(conn, job_id, T0)
        assert not await STORE.checkpoint(conn, job_id, "a" * 32, T0, {}, "", T0)
        assert await STORE.outputs(conn, job_id) == []
        assert await STORE.output(conn, job_id, 1) is None
        cancelled = await STORE.get(conn, job_id)
        assert cancelled is not None
        assert cancelled.status == CANCELLED
        assert not await STORE.has_runnable(conn, T0 + timedelta(days=1))


async def test_purge_drops_only_jobs_finished_before_the_limit(database: Database) -> None:
    job_id = await _fresh(database)
    async with database.engine.begin() as conn:
        waiting = uuid.uuid4().hex
        await STORE.add(
            conn, waiting, "reindex", "http://fhir.test/$reindex", {}, None, T0 + timedelta(seconds=1)
        )
        assert await STORE.claim(conn, T0, "a" * 32, T0 + timedelta(seconds=60)) is not None
        await STORE.add_output(conn, job_id, 1, "Patient", 1, b"{}\n")
        assert await STORE.finish(conn, job_id, "a" * 32, COMPLETED, {}, None, T0)
        assert await STORE.purge(conn, T0) == 0  # finished at T0, not before it
        assert await STORE.purge(conn, T0 + timedelta(hours=1)) == 1
        assert await STORE.get(conn, job_id) is None
        assert await STORE.outputs(conn, job_id) == []
        left = await STORE.get(conn, waiting)
        assert left is not None
        assert left.status == QUEUED
