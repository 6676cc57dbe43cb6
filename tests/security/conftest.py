"""Fixtures for tests of the secured API: an app with JWT authentication and the dev issuer on.

Other packages' tests use `secure_app`, `secure_client`, `mint` and tests.security.helpers.auth_header.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from app.security.devtoken import load_or_create_key, mint_token
from tests.conftest import BASE, empty_tables, make_settings
from tests.databases import TestDatabase
from tests.security.helpers import World, auth_header
from tests.security.scenario import (
    GP_HPR,
    GP_OFFICE_ORGNR,
    HOSPITAL_HPR,
    HOSPITAL_ORGNR,
    KARI_FNR,
    NILS_FNR,
    OTHER_CLINIC_ORGNR,
    OTHER_HPR,
    scenario,
    transaction,
)


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


@pytest.fixture
async def world(secure_client: httpx.AsyncClient, mint: Callable[..., str]) -> World:
    def personnel(hpr: str, orgnr: str) -> dict[str, str]:
        return auth_header(
            mint(
                subject=f"hpr-{hpr}",
                scopes="user/*.cruds",
                hpr=hpr,
                orgnr=orgnr,
                category="LE",
                name="Test Lege",
            )
        )

    system = auth_header(mint(subject="seeder", scopes="system/*.cruds", client_id="seeder"))
    seeded = await secure_client.post("/", json=transaction(scenario()), headers=system)
    assert seeded.status_code == 200, seeded.text
    return World(
        secure_client,
        system,
        gp=personnel(GP_HPR, GP_OFFICE_ORGNR),
        hospital=personnel(HOSPITAL_HPR, HOSPITAL_ORGNR),
        other=personnel(OTHER_HPR, OTHER_CLINIC_ORGNR),
        kari=auth_header(mint(subject="kari", scopes="patient/*.cruds", pid=KARI_FNR)),
        nils=auth_header(mint(subject="nils", scopes="patient/*.cruds", pid=NILS_FNR)),
    )
