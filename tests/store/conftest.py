"""A Database on each backend's session database, for the storage cores' own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.store.engine import Database
from tests.databases import TestDatabase


@pytest.fixture
async def database(session_databases: dict[str, TestDatabase], backend: str) -> AsyncIterator[Database]:
    db = Database(session_databases[backend].url)
    try:
        yield db
    finally:
        await db.dispose()
