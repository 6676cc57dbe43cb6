"""The demo data set loads through the service layer, is synthetic and valid, and reloads as a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.demo import demo_resources, load
from app.resources.core_journal.classify import classify, load_rules
from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    ORGNR_SYSTEM,
    has_valid_orgnr,
    has_valid_personal_check_digits,
)

ROOT = Path(__file__).resolve().parents[1]


async def test_demo_loads_once_and_reloads_without_new_versions(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    resources = demo_resources()
    first = await load(app.state.fhir)
    assert first == {201: len(resources)}
    second = await load(app.state.fhir)
    assert second == {200: len(resources)}
    history = (await client.get("/_history")).json()
    # and the core-journal entries the pack records from the demo's critical information (one each here),
    # each with the Provenance of its source
    entries = sum(1 for r in resources if classify(r, load_rules()) is not None)
    assert entries == 1  # Kari's penicillin allergy
    assert history["total"] == len(resources) + 2 * entries
    provenance = (await client.get("/Provenance")).json()
    assert provenance["total"] == entries
    kari = (await client.get("/Patient/kari")).json()
    assert kari["generalPractitioner"] == [{"reference": "PractitionerRole/fastlege-lind"}]


def test_demo_identities_are_synthetic_with_valid_check_digits() -> None:
    for resource in demo_resources():
        for identifier in resource.get("identifier", []):
            if identifier["system"] == FNR_SYSTEM:
                number = identifier["value"]
                assert has_valid_personal_check_digits(number)
                assert int(number[2:4]) > 80  # synthetic (Tenor) month range: never a real person
            if identifier["system"] == ORGNR_SYSTEM:
                assert has_valid_orgnr(identifier["value"])


def test_the_demo_loader_does_not_say_authentication_is_off(tmp_path: Path) -> None:
    # `make run` loads the demo data, then serves with authentication on: the loader's own app (auth off,
    # no HTTP) must not print the "AUTH_MODE=off" warning into that console.
    environment = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/demo.db"}
    for command in (["-m", "alembic", "upgrade", "head"], ["-m", "app.demo"]):
        done = subprocess.run(
            [sys.executable, *command],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert "demo data: 12 created" in done.stdout
    assert "AUTH_MODE=off" not in done.stdout + done.stderr
