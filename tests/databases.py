"""Test databases: a fresh SQLite file and, when reachable, a fresh PostgreSQL database per test session.

PostgreSQL is optional on a developer machine (its tests skip with a reason) and mandatory in CI, where
.ci/run sets HELSEBRO_REQUIRE_POSTGRES=1 so an unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("HELSEBRO_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("HELSEBRO_REQUIRE_POSTGRES", "") in ("1", "true", "yes")
BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False  # a fixture value, not a test class

    backend: str
    url: str  # SQLAlchemy async URL
    name: str  # database name (PostgreSQL) or file path (SQLite)


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logging"] = False
    return config


async def _admin(sql: str, dsn: str = ADMIN_DSN) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_unavailable_reason() -> str | None:
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL not reachable at {ADMIN_DSN} ({type(exc).__name__}: {exc})"
    return None


def create_database(backend: str, tmp_dir: Path, migrate: bool = True) -> TestDatabase:
    suffix = uuid.uuid4().hex[:12]
    if backend == "sqlite":
        path = tmp_dir / f"helsebro-{suffix}.db"
        db = TestDatabase(backend, f"sqlite+aiosqlite:///{path}", str(path))
    else:
        name = f"helsebro_test_{suffix}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        db = TestDatabase(backend, f"{base}/{name}", name)
    if migrate:
        command.upgrade(alembic_config(db.url), "head")
    return db


def drop_database(db: TestDatabase) -> None:
    if db.backend == "sqlite":
        for extra in ("", "-wal", "-shm"):
            Path(db.name + extra).unlink(missing_ok=True)
    else:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)'))


REPLICA_PORT = 5433
REPLICA_SCRIPT = ROOT / ".ci" / "replica"
REPLICA_ADMIN_DSN = ADMIN_DSN.replace(":5432/", f":{REPLICA_PORT}/")


def replica_url(primary: TestDatabase) -> str:
    """The URL of a test database on the streaming replica (.ci/replica) of the local PostgreSQL."""
    return primary.url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{REPLICA_PORT}/")


def replica_unavailable_reason() -> str | None:
    """Start the replica if it is not running (.ci/replica, which needs root), then check it answers."""
    if os.geteuid() == 0:
        started = subprocess.run(
            [str(REPLICA_SCRIPT)], capture_output=True, text=True, timeout=180, check=False
        )
        if started.returncode != 0:
            return f".ci/replica failed: {(started.stderr or started.stdout)[-500:]}"
    try:
        asyncio.run(_admin("SELECT 1", REPLICA_ADMIN_DSN))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"no PostgreSQL replica on 127.0.0.1:{REPLICA_PORT} ({type(exc).__name__}: {exc})"
    return None
