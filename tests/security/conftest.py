"""Fixtures for tests of the access policy: the `world` of the scenario on the secured app (whose fixtures
`secure_app`, `secure_client` and `mint` live in tests/conftest.py, for every package's tests)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

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


@pytest.fixture
async def world(secure_client: httpx.AsyncClient, mint: Callable[..., str]) -> World:
    return await seeded_world(secure_client, mint)


async def seeded_world(http: httpx.AsyncClient, mint: Callable[..., str]) -> World:
    """The scenario written to a secured app (`http`), and a token for each of its people."""

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
    seeded = await http.post("/", json=transaction(scenario()), headers=system)
    assert seeded.status_code == 200, seeded.text
    return World(
        http,
        system,
        gp=personnel(GP_HPR, GP_OFFICE_ORGNR),
        hospital=personnel(HOSPITAL_HPR, HOSPITAL_ORGNR),
        other=personnel(OTHER_HPR, OTHER_CLINIC_ORGNR),
        kari=auth_header(mint(subject="kari", scopes="patient/*.cruds", pid=KARI_FNR)),
        nils=auth_header(mint(subject="nils", scopes="patient/*.cruds", pid=NILS_FNR)),
    )
