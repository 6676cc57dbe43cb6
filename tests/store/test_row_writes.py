"""write_rows: deletes and inserts over several tables in one trip, in the caller's transaction, stored as
SQLAlchemy's own statements would store them, with SQLAlchemy's errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.security.tables import access_fact, party_identity
from app.store.engine import Database
from app.store.row_writes import RowDelete, RowInsert, write_rows
from app.store.tables import idx_string, resource

AT = datetime(2026, 12, 6, 16, 0, 1, 250000, tzinfo=UTC)


async def new_resource(conn: AsyncConnection, res_id: str) -> int:
    values = {"res_type": "RowWrites", "res_id": res_id, "version": 1, "last_updated": AT, "deleted": False}
    return int((await conn.execute(insert(resource).returning(resource.c.pk), values)).scalar_one())


def fact(pk: int, kind: str, patient: str) -> dict[str, object]:
    return {
        "source_pk": pk,
        "kind": kind,
        "patient_id": patient,
        "party": "org:912345688",
        "target_type": None,
        "target_id": None,
        "valid_from": AT,
        "valid_until": None,
    }


async def rows_of(conn: AsyncConnection, table: Table, pk: int) -> list[tuple[object, ...]]:
    key = table.c.res_pk if "res_pk" in table.c else table.c.source_pk
    columns = [c for c in table.c if c.name != "id"]
    return [
        tuple(r) for r in (await conn.execute(select(*columns).where(key == pk).order_by(*columns))).all()
    ]


async def test_replacing_rows_keeps_what_is_kept_and_stores_as_sqlalchemy_does(database: Database) -> None:
    async with database.write_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            pk, twin = await new_resource(conn, "a"), await new_resource(conn, "b")
            await conn.execute(insert(access_fact), [fact(pk, "author", "p0"), fact(pk, "care", "p1")])
            await conn.execute(insert(access_fact), [fact(twin, "care", "p2")])
            await conn.execute(
                insert(party_identity),
                [{"source_pk": pk, "ref_type": "Patient", "ref_id": "a", "party": "pid:1"}],
            )
            # Replace pk's facts (the author fact stays) and identities; its twin through SQLAlchemy.
            await write_rows(
                conn,
                [
                    RowDelete(party_identity, "source_pk", pk),
                    RowDelete(access_fact, "source_pk", pk, keep=("kind", "author")),
                    RowInsert(party_identity, []),  # nothing to insert: skipped
                    RowInsert(access_fact, [fact(pk, "care", "p3"), fact(pk, "proxy", "p4")]),
                ],
            )
            await conn.execute(delete(access_fact).where(access_fact.c.source_pk == twin))
            await conn.execute(insert(access_fact), [fact(twin, "care", "p3"), fact(twin, "proxy", "p4")])

            facts = await rows_of(conn, access_fact, pk)
            assert [(f[1], f[2]) for f in facts] == [("author", "p0"), ("care", "p3"), ("proxy", "p4")]
            twin_facts = await rows_of(conn, access_fact, twin)
            assert [f[1:] for f in facts[1:]] == [f[1:] for f in twin_facts]  # same stored values
            assert facts[1][-2] == AT  # a timestamp reads back as it was given
            assert await rows_of(conn, party_identity, pk) == []
        finally:
            await transaction.rollback()


async def test_a_failing_step_raises_sqlalchemys_error_and_the_unit_rolls_back(database: Database) -> None:
    async with database.write_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            pk = await new_resource(conn, "c")
            row = {"res_pk": pk, "res_type": "RowWrites", "param": "name", "hash_identity": 1}
            strings = {**row, "value_norm": "kari", "value_exact": "Kari"}
            with pytest.raises(IntegrityError):
                await write_rows(
                    conn,
                    [
                        RowInsert(idx_string, [strings]),
                        RowInsert(access_fact, [fact(pk, "care", "p1") | {"kind": None}]),  # NOT NULL
                    ],
                )
        finally:
            await transaction.rollback()
    async with database.read_engine.connect() as conn:
        count = (await conn.execute(select(resource.c.pk).where(resource.c.res_id == "c"))).all()
    assert count == []


async def test_nothing_to_do_is_no_trip(database: Database) -> None:
    async with database.read_engine.connect() as conn:
        await write_rows(conn, [RowInsert(access_fact, []), RowInsert(party_identity, [])])
