"""The import command (app.load): NDJSON in chunks with bad lines reported by number, Bundles run as
they are, single resources, KITH messages through the intake, a summary of failures, and a run that goes
on after an interruption without writing anything twice. On SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.fhir.context import RequestContext, SystemPrincipal
from app.load import COMPLETE, STATE_FILE, Loader, LoadState, Tally
from tests.adapters.kith.conftest import fixture_bytes
from tests.conftest import BASE
from tests.databases import TestDatabase
from tests.fhir.fixtures import observation, patient

ROOT = Path(__file__).resolve().parent.parent
LOADER = RequestContext(BASE, SystemPrincipal("loader", "import test data"), "loader")


def _line(resource: dict[str, Any]) -> bytes:
    return orjson.dumps(resource) + b"\n"


def _patients(count: int, start: int = 0) -> bytes:
    return b"".join(
        _line({**patient(given=f"Pasient{n}"), "id": f"p{n}"}) for n in range(start, start + count)
    )


class _Bar:
    """A progress sink that can stop the run after a number of updates, as an interrupt would."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.updates = 0
        self.interrupt_after = interrupt_after

    def update(self, n: int) -> None:
        self.updates += 1
        if self.interrupt_after is not None and self.updates > self.interrupt_after:
            raise KeyboardInterrupt

    def set_postfix_str(self, text: str) -> None:
        return None


async def _run(app: FastAPI, directory: Path, chunk: int = 500, bar: _Bar | None = None) -> Tally:
    loader = Loader(app.state.engine, LOADER, app.state.kith, chunk)
    return await loader.load(directory, LoadState(directory / STATE_FILE), bar or _Bar())


async def test_a_mixed_directory(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> None:
    bogus = {**patient(), "id": "bogus", "gender": "bogus"}
    (tmp_path / "a.ndjson").write_bytes(
        _patients(3) + b"{not json\n" + _line(bogus) + _line(observation("Patient/p0"))
    )
    (tmp_path / "b").mkdir()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5f1c3c1e-0a4b-4f57-9d1a-0c8f9e4b2a11",
                "resource": patient(given="Bunt"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": observation("urn:uuid:5f1c3c1e-0a4b-4f57-9d1a-0c8f9e4b2a11"),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    (tmp_path / "b" / "bundle.json").write_bytes(orjson.dumps(bundle))
    (tmp_path / "c.json").write_bytes(
        orjson.dumps({"resourceType": "Organization", "id": "org", "name": "Fjordvik"})
    )
    broken = {**bundle, "entry": [{"resource": bogus, "request": {"method": "PUT", "url": "Patient/bogus"}}]}
    (tmp_path / "d.json").write_bytes(orjson.dumps(broken))
    (tmp_path / "e.xml").write_bytes(fixture_bytes("henvisning_v2_nytilstand.xml"))
    (tmp_path / "f.ndjson.gz").write_bytes(
        gzip.compress(_patients(1, start=10))
    )  # compressed: read as NDJSON
    (tmp_path / "notes.txt").write_text("not data")

    tally = await _run(app, tmp_path)

    assert tally.files == 6
    assert tally.resources == 3 + 1 + 2 + 1 + 1 + 1  # NDJSON, bundle, single resource, message, gzip
    failed = {(f.file, f.where, f.status) for f in tally.failures}
    assert failed == {("a.ndjson", "line 4", 400), ("a.ndjson", "line 5", 400), ("d.json", "bundle", 400)}
    assert "gender" in next(f.reason for f in tally.failures if f.where == "line 5")
    # four from the NDJSON files, one from the Bundle, one from the referral message
    assert (await client.get("/Patient", params={"_summary": "count"})).json()["total"] == 6
    assert (await client.get("/Observation", params={"subject": "Patient/p0"})).json()["total"] == 1
    assert (await client.get("/ServiceRequest", params={"_summary": "count"})).json()["total"] == 1
    assert (await client.get("/Organization/org")).status_code == 200

    again = await _run(app, tmp_path)  # everything is done: nothing is read or written again
    assert (again.files, again.resources, again.failures) == (0, 0, [])


async def test_an_interrupted_run_goes_on_without_writing_twice(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "patients.ndjson").write_bytes(_patients(7))
    with pytest.raises(KeyboardInterrupt):
        await _run(app, tmp_path, chunk=2, bar=_Bar(interrupt_after=2))  # after the second chunk
    state = orjson.loads((tmp_path / STATE_FILE).read_bytes())["files"]["patients.ndjson"]
    assert state["done"] == 4
    assert (await client.get("/Patient", params={"_summary": "count"})).json()["total"] == 4

    tally = await _run(app, tmp_path, chunk=2)
    assert tally.resources == 3  # only what the first run had not stored
    found = (await client.get("/Patient", params={"_count": "50"})).json()
    assert sorted(e["resource"]["id"] for e in found["entry"]) == [f"p{n}" for n in range(7)]
    assert {e["resource"]["meta"]["versionId"] for e in found["entry"]} == {"1"}  # none written twice
    assert orjson.loads((tmp_path / STATE_FILE).read_bytes())["files"]["patients.ndjson"]["done"] == COMPLETE


def test_the_command_line(
    app: FastAPI, session_databases: dict[str, TestDatabase], backend: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "patients.ndjson").write_bytes(_patients(2) + b"[]\n")
    # Read first (name order), it names a patient that comes later: the import checks no references.
    (data / "observations.ndjson").write_bytes(_line(observation("Patient/p0")))
    report = tmp_path / "failures.jsonl"
    environment = {**os.environ, "DATABASE_URL": session_databases[backend].url, "AUTH_MODE": "off"}
    done = subprocess.run(
        [sys.executable, "-m", "app.load", str(data), "--quiet", "--report", str(report)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # one line failed
    assert "2 files read, 3 resources and messages stored, 1 failed" in done.stdout
    assert "patients.ndjson line 3: HTTP 400 not a FHIR resource" in done.stdout
    (failure,) = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert failure == {
        "file": "patients.ndjson",
        "where": "line 3",
        "status": 400,
        "reason": "not a FHIR resource",
    }
    missing = subprocess.run(
        [sys.executable, "-m", "app.load", str(tmp_path / "nowhere")],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert missing.returncode == 2
