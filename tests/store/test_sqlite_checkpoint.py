"""WAL checkpoints run in their own thread: commits never checkpoint, the thread copies the log back."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text

from app.store.engine import Database
from app.store.sqlite_checkpoint import SqliteCheckpointer

PAGES_WRITTEN = 3_000  # three times the 1,000 pages at which a commit would checkpoint by default


async def write_pages(database: Database) -> None:
    async with database.write_slot(), database.write_engine.begin() as conn:
        await conn.execute(text("create table if not exists t (x blob)"))
    for _ in range(PAGES_WRITTEN // 100):
        async with database.write_slot(), database.write_engine.begin() as conn:
            await conn.execute(text("insert into t values (randomblob(4000))"), [{}] * 100)


def wal_pages(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size // 4096


async def test_commits_never_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    database.checkpointer = None  # nobody checkpoints: the log keeps every page written
    try:
        await write_pages(database)
        async with database.read_engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        assert wal_pages(path) > PAGES_WRITTEN  # with SQLite's default the log restarts after 1,000 pages
    finally:
        await database.dispose()


class Watched(SqliteCheckpointer):
    def __init__(self, path: str) -> None:
        super().__init__(path, interval_s=0.1)
        self.rounds: list[tuple[int, int]] = []

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        _busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.rounds.append((pages, copied))


async def test_the_thread_copies_the_log_back_while_writes_go_on(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    watched = Watched(str(path))
    database.checkpointer = watched
    try:
        await write_pages(database)
        assert watched.running  # started by the first write
        await asyncio.sleep(0.3)
        assert any(copied == pages > PAGES_WRITTEN // 10 for pages, copied in watched.rounds)
    finally:
        await database.dispose()
    assert not watched.running
    with sqlite3.connect(path) as conn:  # nothing is lost by moving the log into the file
        assert conn.execute("select count(*) from t").fetchone()[0] == PAGES_WRITTEN
