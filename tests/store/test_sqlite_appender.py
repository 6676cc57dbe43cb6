"""SqliteAppender: what it stores reads back exactly as rows inserted through SQLAlchemy; a batch is one
transaction; it queues behind the process's other SQLite writers. (SQLite files only: PostgreSQL has
PostgresAppender, test_postgres_appender.py; on in-memory SQLite the audit trail's batches go through the
pool, tests/security/test_audit_writer.py.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from app.security.tables import audit_event, audit_patient
from app.store.engine import Database
from tests.databases import TestDatabase, create_database, drop_database


def event_row(event_id: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": event_id,
        "recorded": datetime(2026, 12, 6, 11, 30, 15, 123456, tzinfo=UTC),
        "action": "R",
        "subtype": "read",
        "outcome": "0",
        "flag": None,
        "who_system": "urn:oid:2.16.578.1.12.4.1.4.4",
        "who_value": "9144900",
        "altid": None,
        "client_id": "ehr",
        "orgnr": "912345688",
        "sub_orgnr": None,
        "entity_type": "Observation",
        "entity_id": "obs-1",
        "request_id": "req-1",
        "content": b'{"resourceType":"AuditEvent"}',
    }
    row.update(overrides)
    return row


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[TestDatabase]:
    db = create_database("sqlite", tmp_path)  # migrated (alembic runs its own event loop: not in one)
    yield db
    drop_database(db)


@pytest.fixture
async def database(sqlite_file: TestDatabase) -> AsyncIterator[Database]:
    database = Database(sqlite_file.url)
    try:
        yield database
    finally:
        await database.dispose()


async def stored(database: Database, event_id: str) -> tuple[object, ...]:
    async with database.read_engine.connect() as conn:
        raw = await conn.execute(text("select * from audit_event where id = :id"), {"id": event_id})
        return tuple(raw.one())


async def test_rows_read_back_as_rows_inserted_through_sqlalchemy(database: Database) -> None:
    assert database.appender is not None
    await database.appender.append([(audit_event, [event_row("by-appender")])])
    async with database.write_engine.begin() as conn:
        await conn.execute(insert(audit_event), [event_row("by-sqlalchemy")])
    appended, inserted = await stored(database, "by-appender"), await stored(database, "by-sqlalchemy")
    assert appended[1:] == inserted[1:]  # the same stored text for the timestamp, the same bytes
    async with database.read_engine.connect() as conn:
        recorded = (await conn.execute(select(audit_event.c.recorded))).scalars().all()
    assert recorded == [datetime(2026, 12, 6, 11, 30, 15, 123456, tzinfo=UTC)] * 2


async def test_a_batch_is_one_transaction(database: Database) -> None:
    assert database.appender is not None
    await database.appender.append([(audit_event, [event_row("first")])])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        await database.appender.append(
            [
                (audit_event, [event_row("second"), event_row("first")]),  # the duplicate fails the batch
                (audit_patient, [{"event_id": "second", "patient_id": "p1"}]),
            ]
        )
    async with database.read_engine.connect() as conn:
        ids = (await conn.execute(select(audit_event.c.id))).scalars().all()
        patients = (await conn.execute(select(audit_patient.c.event_id))).scalars().all()
    assert ids == ["first"]
    assert patients == []
    # The appender's connection is usable again after the rollback.
    await database.appender.append([(audit_event, [event_row("third")])])
    assert (await stored(database, "third"))[0] == "third"


async def test_it_waits_for_the_write_slot_of_the_process(database: Database) -> None:
    assert database.appender is not None
    order: list[str] = []

    async def other_writer() -> None:
        async with database.write_slot():
            order.append("writer holds the slot")
            await asyncio.sleep(0.05)
            order.append("writer leaves")

    async def append() -> None:
        await asyncio.sleep(0.01)  # after the other writer took the slot
        assert database.appender is not None
        await database.appender.append([(audit_event, [event_row("queued")])])
        order.append("appended")

    await asyncio.gather(other_writer(), append())
    assert order == ["writer holds the slot", "writer leaves", "appended"]


async def test_an_empty_batch_does_nothing_and_in_memory_databases_have_no_appender(
    database: Database,
) -> None:
    assert database.appender is not None
    await database.appender.append([(audit_event, []), (audit_patient, [])])
    async with database.read_engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from audit_event"))).scalar() == 0
    memory = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert memory.appender is None
    finally:
        await memory.dispose()


async def test_closing_twice_is_harmless_and_it_opens_again(database: Database) -> None:
    assert database.appender is not None
    await database.dispose()
    await database.dispose()
    await database.appender.append([(audit_event, [event_row("after-dispose")])])
    assert (await stored(database, "after-dispose"))[0] == "after-dispose"
