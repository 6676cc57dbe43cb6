"""The demo data set loads through the service layer, is synthetic and valid, and reloads as a no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.demo import demo_resources, load
from app.demo_pregnancy import EPISODE, ULTRASOUND_SHIFT, due_date
from app.resources.core_journal.classify import classify, load_rules
from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    ORGNR_SYSTEM,
    has_valid_orgnr,
    has_valid_personal_check_digits,
)

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 12, 7)  # a load day: Sigrid's pregnancy is dated from it
PILOT_FILE = ROOT / "app" / "resources" / "pregnancy_card" / "pilot-demo.json"
# What the pregnancy card pack's flow derives from her dating: the due date by her last period, the due
# date in force and the CarePlan of the basic programme.
DERIVED = 3


async def _derived(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Sigrid's derived due dates (by LOINC code) and her CarePlan."""
    episode = f"EpisodeOfCare/{EPISODE}"
    found: dict[str, dict[str, Any]] = {}
    for code in ("11779-6", "11778-8"):
        bundle = (
            await client.get(f"/Observation?episode-of-care={episode}&code=http://loinc.org|{code}")
        ).json()
        assert bundle["total"] == 1
        found[code] = bundle["entry"][0]["resource"]
    plans = (await client.get(f"/CarePlan?episode-of-care={episode}")).json()
    assert plans["total"] == 1
    found["CarePlan"] = plans["entry"][0]["resource"]
    return found


async def test_demo_loads_once_and_reloads_without_new_versions(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    resources = demo_resources(DAY)
    first = await load(app.state.fhir, DAY)
    assert first == {201: len(resources)}
    second = await load(app.state.fhir, DAY)  # the same day: nothing changes
    assert second == {200: len(resources)}
    history = (await client.get("/_history")).json()
    # and the core-journal entries the pack records from the demo's critical information (one each here),
    # each with the Provenance of its source, and what the pregnancy card's flow derives (one version each:
    # the demo is one unit of work, so her pregnancy is dated once)
    entries = sum(1 for r in resources if classify(r, load_rules()) is not None)
    assert entries == 1  # Kari's penicillin allergy
    assert history["total"] == len(resources) + 2 * entries + DERIVED
    provenance = (await client.get("/Provenance")).json()
    assert provenance["total"] == entries
    kari = (await client.get("/Patient/kari")).json()
    assert kari["generalPractitioner"] == [{"reference": "PractitionerRole/fastlege-lind"}]
    sigrid = (await client.get("/Patient/sigrid")).json()
    assert sigrid["generalPractitioner"] == [{"reference": "PractitionerRole/fastlege-lind"}]
    # Her due dates: the early ultrasound's is in force, four days before the one by her last period.
    derived = await _derived(client)
    due = due_date(DAY)
    assert derived["11778-8"]["valueDateTime"] == due.isoformat()
    assert derived["11778-8"]["derivedFrom"] == [{"reference": f"Observation/{EPISODE}-termin-ul"}]
    assert derived["11779-6"]["valueDateTime"] == (due + timedelta(days=ULTRASOUND_SHIFT)).isoformat()
    plan = derived["CarePlan"]
    assert plan["subject"] == {"reference": "Patient/sigrid"}
    assert len(plan["activity"]) == 10  # the basic programme's consultations, dated from the due date
    card = await client.get("/Patient/sigrid/$pregnancy-card")
    assert card.status_code == 200
    assert card.json()["type"] == "document"


async def test_a_reload_on_a_later_day_moves_her_pregnancy_with_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await load(app.state.fhir, DAY)
    before = await _derived(client)
    later = DAY + timedelta(days=1)
    assert await load(app.state.fhir, later) == {200: len(demo_resources(later))}
    after = await _derived(client)
    # her dated resources have new versions, the rest none
    lmp = (await client.get(f"/Observation/{EPISODE}-lmp")).json()
    assert lmp["meta"]["versionId"] == "2"
    assert (await client.get(f"/CareTeam/{EPISODE}-team")).json()["meta"]["versionId"] == "1"
    assert (await client.get("/Patient/sigrid")).json()["meta"]["versionId"] == "1"
    # and the flow moved her due dates and rebuilt her plan (the same resources, new versions)
    assert after["11778-8"]["id"] == before["11778-8"]["id"]
    assert (
        after["11778-8"]["valueDateTime"] == due_date(later).isoformat() != before["11778-8"]["valueDateTime"]
    )
    assert after["CarePlan"]["id"] == before["CarePlan"]["id"]
    assert after["CarePlan"]["meta"]["versionId"] == "2"


def test_the_demo_pilot_area_covers_the_demo_organisations() -> None:
    # `make run` uses pilot-demo.json: the hospital, the GP office and the health station write card content.
    listed = set(json.loads(PILOT_FILE.read_text())["organizations"])
    organisations = {
        i["value"]
        for r in demo_resources(DAY)
        if r["resourceType"] == "Organization"
        for i in r["identifier"]
        if i["system"] == ORGNR_SYSTEM
    }
    assert listed == organisations


def test_demo_identities_are_synthetic_with_valid_check_digits() -> None:
    for resource in demo_resources(DAY):
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
    assert "demo data: 38 created" in done.stdout
    assert "AUTH_MODE=off" not in done.stdout + done.stderr
