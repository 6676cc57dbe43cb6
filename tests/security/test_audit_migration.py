"""Migration 0006 moves AuditEvents stored as resources (before it) into the audit trail's tables, and
back on downgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, insert, select

from app.fhir.service import canonical_bytes
from app.security.audit import AuditRecord, audit_event
from app.security.principal import Principal, ScopeSet
from app.security.tables import audit_event as audit_event_table
from app.security.tables import audit_patient
from app.store.engine import Database
from app.store.tables import idx_token, resource, resource_version
from tests.conftest import require_backend
from tests.databases import BACKENDS, alembic_config, create_database, drop_database

AT = datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC)


def old_style_event() -> bytes:
    principal = Principal(
        kind="personnel",
        subject="sub",
        client_id="ehr",
        issuer="https://helseid.test",
        scopes=ScopeSet(),
        hpr="565501872",
        orgnr="974633574",
    )
    record = AuditRecord(
        "search",
        "0",
        principal,
        ("p1", "p2"),
        query="Observation?patient=p1,p2",
        request_id="rq",
        recorded=AT,
    )
    return canonical_bytes(audit_event(record), "old-1", 1, AT)


async def seed_old_event(url: str, content: bytes) -> None:
    database = Database(url)
    try:
        async with database.engine.begin() as conn:
            pk = (
                await conn.execute(
                    insert(resource).returning(resource.c.pk),
                    {
                        "res_type": "AuditEvent",
                        "res_id": "old-1",
                        "version": 1,
                        "last_updated": AT,
                        "deleted": False,
                        "content": content,
                    },
                )
            ).scalar_one()
            row = {"res_pk": pk, "res_type": "AuditEvent", "res_id": "old-1", "version": 1}
            await conn.execute(
                insert(resource_version), {**row, "last_updated": AT, "method": "POST", "content": content}
            )
            del row["res_id"], row["version"]
            token = {"param": "action", "hash_identity": 1, "system": None, "code": "E"}
            await conn.execute(
                insert(idx_token), {**row, **token, "hash_value": 2, "hash_sys_value": 3, "hash_sys": 4}
            )
    finally:
        await database.dispose()


async def state(url: str, trail: bool) -> dict[str, Any]:
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            found: dict[str, Any] = {
                "resources": (await conn.execute(select(resource.c.res_id, resource.c.content))).all(),
                "versions": (
                    await conn.execute(select(func.count()).select_from(resource_version))
                ).scalar_one(),
                "tokens": (await conn.execute(select(func.count()).select_from(idx_token))).scalar_one(),
            }
            if trail:
                found["events"] = (await conn.execute(select(audit_event_table))).all()
                patients = select(audit_patient.c.patient_id).order_by(audit_patient.c.patient_id)
                found["patients"] = [r[0] for r in (await conn.execute(patients)).all()]
            return found
    finally:
        await database.dispose()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_stored_audit_events_move_to_the_trail_and_back(
    backend_name: str, postgres_reason: str | None, tmp_path: Path
) -> None:
    require_backend(backend_name, postgres_reason)
    db = create_database(backend_name, tmp_path, migrate=False)
    try:
        config = alembic_config(db.url)
        command.upgrade(config, "0005")
        content = old_style_event()
        asyncio.run(seed_old_event(db.url, content))

        command.upgrade(config, "head")
        moved = asyncio.run(state(db.url, trail=True))
        assert moved["resources"] == []
        assert (moved["versions"], moved["tokens"]) == (0, 0)  # gone with their resource row
        (event,) = moved["events"]
        assert (event.id, event.recorded, event.action, event.subtype) == ("old-1", AT, "E", "search-type")
        assert (event.who_value, event.orgnr, event.request_id) == ("565501872", "974633574", "rq")
        assert event.content == content  # served as it was stored
        assert moved["patients"] == ["p1", "p2"]

        command.downgrade(config, "0005")
        back = asyncio.run(state(db.url, trail=False))
        assert [(r.res_id, r.content) for r in back["resources"]] == [("old-1", content)]
        assert back["versions"] == 1

        command.upgrade(config, "head")
        again = asyncio.run(state(db.url, trail=True))
        assert [e.id for e in again["events"]] == ["old-1"]
        assert again["resources"] == []
    finally:
        drop_database(db)
