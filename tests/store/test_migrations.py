"""Alembic: upgrade head, downgrade base, upgrade head again, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from app.store.engine import Database
from app.store.tables import metadata
from tests.conftest import require_backend
from tests.databases import BACKENDS, alembic_config, create_database, drop_database


async def table_names(url: str) -> set[str]:
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await database.dispose()


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_upgrade_downgrade_upgrade(backend_name: str, postgres_reason: str | None, tmp_path: Path) -> None:
    require_backend(backend_name, postgres_reason)
    db = create_database(backend_name, tmp_path, migrate=False)
    try:
        config = alembic_config(db.url)
        command.upgrade(config, "head")
        assert set(metadata.tables) <= asyncio.run(table_names(db.url))
        command.downgrade(config, "base")
        assert asyncio.run(table_names(db.url)) <= {"alembic_version"}
        command.upgrade(config, "head")
        assert set(metadata.tables) <= asyncio.run(table_names(db.url))
    finally:
        drop_database(db)
