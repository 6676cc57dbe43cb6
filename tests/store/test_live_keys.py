"""Repository.live_keys, the lookup behind referential integrity: which (type, id) keys name a live
resource, across several types in one statement, in chunks for long lists (both databases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.store.engine import Database
from app.store.repository import _KEYS_PER_STATEMENT, Repository

AT = datetime(2026, 12, 7, tzinfo=UTC)


async def test_live_keys_finds_the_live_resources_of_every_type_asked(database: Database) -> None:
    repo = Repository(database)
    run = uuid.uuid4().hex[:8]  # ids of this run: the session database keeps other tests' rows
    patients = [f"p{run}-{n}" for n in range(3)]
    async with repo.writer() as conn:
        for res_id in patients:
            await repo.insert(conn, "Patient", res_id, b"{}", AT, "POST")
        await repo.insert(conn, "Organization", f"o{run}", b"{}", AT, "POST")
        gone = await repo.insert(conn, "Practitioner", f"x{run}", b"{}", AT, "POST")
        await repo.replace(conn, gone, None, AT, "DELETE")

    live = {("Patient", i) for i in patients} | {("Organization", f"o{run}")}
    missing = [("Patient", f"none{run}"), ("Practitioner", f"x{run}"), ("Location", f"o{run}")]
    # More keys than one statement takes, the live ones in the last chunk.
    padding = [("Observation", f"pad{run}-{n}") for n in range(_KEYS_PER_STATEMENT)]
    async with database.engine.connect() as conn:
        assert await repo.live_keys(conn, [*missing, *sorted(live)]) == live
        assert await repo.live_keys(conn, [*padding, *missing, *sorted(live)]) == live
        assert await repo.live_keys(conn, [("Organization", f"o{run}")]) == {("Organization", f"o{run}")}
        assert await repo.live_keys(conn, []) == set()
