"""Fixtures: every storage and API test runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.config import Settings
from app.main import create_app
from app.security.devtoken import load_or_create_key, mint_token
from tests.databases import (
    BACKENDS,
    REQUIRE_POSTGRES,
    TestDatabase,
    create_database,
    drop_database,
    postgres_unavailable_reason,
)

TABLES_CHILD_FIRST = (
    "job_output",
    "job",
    "audit_patient",
    "audit_event",
    "sec_emergency_access",
    "conditional_create",
    "idx_token",
    "resource_version",
    "resource",
)
BASE = "http://fhir.test"
# The pregnancy card's pilot area in tests: the scenario's GP office and hospital (tests/security).
PREGNANCY_CARD_PILOT = Path(__file__).parent / "resources" / "pregnancy_card" / "pilot-scenario.json"


@pytest.fixture(scope="session")
def postgres_reason() -> str | None:
    reason = postgres_unavailable_reason()
    if reason and REQUIRE_POSTGRES:
        pytest.fail(f"HELSEBRO_REQUIRE_POSTGRES is set but {reason}")
    return reason


def require_backend(backend: str, postgres_reason: str | None) -> None:
    if backend == "postgresql" and postgres_reason:
        pytest.skip(f"{postgres_reason}; set HELSEBRO_REQUIRE_POSTGRES=1 to make this a failure")


@pytest.fixture(scope="session")
def session_databases(
    tmp_path_factory: pytest.TempPathFactory, postgres_reason: str | None
) -> Iterator[dict[str, TestDatabase]]:
    tmp_dir: Path = tmp_path_factory.mktemp("db")
    databases = {}
    for backend in BACKENDS:
        if backend == "postgresql" and postgres_reason:
            continue
        databases[backend] = create_database(backend, tmp_dir)
    yield databases
    for db in databases.values():
        drop_database(db)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, postgres_reason: str | None) -> str:
    name: str = request.param
    require_backend(name, postgres_reason)
    return name


_apps: dict[str, FastAPI] = {}


@pytest.fixture(scope="session")
async def _app_registry(session_databases: dict[str, TestDatabase]) -> AsyncIterator[dict[str, FastAPI]]:
    yield _apps
    for app in _apps.values():
        await app.state.database.dispose()
    _apps.clear()


# One pooled connection, and a short wait for it: a request that holds one connection while it waits for
# another (which can deadlock a busy server) fails its test within seconds instead of passing.
ONE_CONNECTION: dict[str, object] = {"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_s": 5.0}


def make_settings(url: str, **overrides: object) -> Settings:
    """Engine tests run with authentication off; tests/security builds apps with it on."""
    values: dict[str, object] = {
        "auth_mode": "off",
        "base_url": BASE,
        "pregnancy_card_pilot_file": str(PREGNANCY_CARD_PILOT),
        **ONE_CONNECTION,
        **overrides,
    }
    return Settings(database_url=url, log_level="WARNING", **values)  # type: ignore[arg-type]


@pytest.fixture
async def app(
    backend: str, session_databases: dict[str, TestDatabase], _app_registry: dict[str, FastAPI]
) -> FastAPI:
    """One app per backend for the whole session, with every table emptied before each test."""
    if backend not in _app_registry:
        _app_registry[backend] = create_app(make_settings(session_databases[backend].url))
    application = _app_registry[backend]
    await empty_tables(application, backend)
    return application


async def empty_tables(application: FastAPI, backend: str) -> None:
    async with application.state.database.engine.begin() as conn:
        if backend == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES_CHILD_FIRST)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES_CHILD_FIRST:
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


@pytest.fixture(scope="session")
def dev_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dev issuer key for the whole session (RSA key generation is slow)."""
    path = tmp_path_factory.mktemp("auth") / "dev-key.json"
    load_or_create_key(path)
    return path


@pytest.fixture
async def secure_app(
    backend: str,
    session_databases: dict[str, TestDatabase],
    _app_registry: dict[str, FastAPI],
    dev_key_file: Path,
) -> FastAPI:
    """One authenticated app per backend for the whole session, tables emptied before each test."""
    name = f"secure-{backend}"
    if name not in _app_registry:
        settings = make_settings(
            session_databases[backend].url,
            auth_mode="jwt",
            auth_dev_issuer=True,
            auth_dev_key_file=str(dev_key_file),
        )
        _app_registry[name] = create_app(settings)
    application = _app_registry[name]
    await empty_tables(application, backend)
    return application


@pytest.fixture
async def secure_client(secure_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=secure_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


@pytest.fixture
def mint(dev_key_file: Path) -> Callable[..., str]:
    """mint(subject=..., scopes=..., **mint_token_options) -> a token the secure app accepts."""
    return functools.partial(mint_token, dev_key_file)


class app_client:
    """An app with other settings on a session test database (tables emptied first), and a client for it."""

    def __init__(self, db: TestDatabase, **settings: object) -> None:
        self.app = create_app(make_settings(db.url, **settings))
        self.backend = db.backend
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> tuple[httpx.AsyncClient, FastAPI]:
        await empty_tables(self.app, self.backend)
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)
        return self._http, self.app

    async def __aexit__(self, *_exc: object) -> None:
        assert self._http is not None
        await self._http.aclose()
        await self.app.state.database.dispose()
