"""PostgresAppender: a batch over several tables is one statement, stored as rows inserted through
SQLAlchemy would be, all of it or nothing. (PostgreSQL only; SQLite files have SqliteAppender.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from app.security.tables import audit_event, audit_patient
from app.store.engine import Database
from app.store.postgres_appender import PostgresAppender
from tests.conftest import require_backend
from tests.databases import TestDatabase, create_database, drop_database
from tests.store.test_sqlite_appender import event_row


@pytest.fixture
def postgres_database(tmp_path: Path, postgres_reason: str | None) -> Iterator[TestDatabase]:
    require_backend("postgresql", postgres_reason)
    db = create_database("postgresql", tmp_path)  # migrated (alembic runs its own event loop: not in one)
    yield db
    drop_database(db)


@pytest.fixture
async def database(postgres_database: TestDatabase) -> AsyncIterator[Database]:
    database = Database(postgres_database.url)
    try:
        yield database
    finally:
        await database.dispose()


async def events_and_patients(database: Database) -> tuple[list[str], list[tuple[str, str]]]:
    async with database.read_engine.connect() as conn:
        ids = (await conn.execute(select(audit_event.c.id).order_by(audit_event.c.id))).scalars().all()
        patients = (await conn.execute(select(audit_patient).order_by(audit_patient.c.event_id))).all()
    return list(ids), [tuple(p) for p in patients]


async def test_the_database_appends_through_it(database: Database) -> None:
    assert isinstance(database.appender, PostgresAppender)


async def test_rows_read_back_as_rows_inserted_through_sqlalchemy(database: Database) -> None:
    assert database.appender is not None
    await database.appender.append([(audit_event, [event_row("by-appender", flag="emergency-access")])])
    async with database.write_engine.begin() as conn:
        await conn.execute(insert(audit_event), [event_row("by-sqlalchemy", flag="emergency-access")])
    async with database.read_engine.connect() as conn:
        rows = (await conn.execute(text("select * from audit_event order by id"))).all()
    assert [row[0] for row in rows] == ["by-appender", "by-sqlalchemy"]
    assert rows[0][1:] == rows[1][1:]


async def test_events_and_their_patients_are_one_statement_all_or_nothing(database: Database) -> None:
    assert database.appender is not None
    await database.appender.append(
        [
            (audit_event, [event_row("e1"), event_row("e2")]),
            # The patients refer to events of the same batch: the foreign key holds at the statement's end.
            (audit_patient, [{"event_id": "e1", "patient_id": "p1"}, {"event_id": "e2", "patient_id": "p2"}]),
        ]
    )
    with pytest.raises(IntegrityError):
        await database.appender.append(
            [
                (audit_event, [event_row("e3"), event_row("e1")]),  # the duplicate fails the batch
                (audit_patient, [{"event_id": "e3", "patient_id": "p3"}]),
            ]
        )
    assert await events_and_patients(database) == (["e1", "e2"], [("e1", "p1"), ("e2", "p2")])
    # A batch of one table, and an empty one.
    await database.appender.append([(audit_event, [event_row("e4")]), (audit_patient, [])])
    await database.appender.append([(audit_event, []), (audit_patient, [])])
    assert (await events_and_patients(database))[0] == ["e1", "e2", "e4"]


async def test_a_patient_row_without_its_event_fails_the_batch(database: Database) -> None:
    assert database.appender is not None
    with pytest.raises(IntegrityError):
        await database.appender.append(
            [
                (audit_event, [event_row("e5")]),
                (
                    audit_patient,
                    [{"event_id": "e5", "patient_id": "p"}, {"event_id": "nobody", "patient_id": "p"}],
                ),
            ]
        )
    assert await events_and_patients(database) == ([], [])
