"""The secured care setting of tests/security (scenario.py seeded, a token per actor), for this pack too,
and the secured app's pilot area pointed at a file of the test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI

from app.resources.pregnancy_card.pilot import PilotFile
from tests.conftest import PREGNANCY_CARD_PILOT
from tests.security.conftest import world
from tests.security.scenario import GP_OFFICE_ORGNR, HOSPITAL_ORGNR

__all__ = ["Pilot", "pilot", "world"]


class Pilot:
    """The secured app's pilot file, pointed at a file of the test's own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mtime = 1_000_000

    def set(self, organizations: Sequence[str] = (), municipalities: Sequence[str] = ()) -> None:
        area = {"organizations": list(organizations), "municipalities": list(municipalities)}
        self.path.write_bytes(orjson.dumps(area))
        self.mtime += 1  # a modification time of its own: the reload never depends on the clock's resolution
        os.utime(self.path, ns=(self.mtime * 10**9, self.mtime * 10**9))


@pytest.fixture
def pilot(secure_app: FastAPI, tmp_path: Path) -> Iterator[Pilot]:
    switch: PilotFile = secure_app.state.pregnancy_card_pilot
    own = Pilot(tmp_path / "pilot.json")
    own.set([GP_OFFICE_ORGNR, HOSPITAL_ORGNR])
    switch.use(own.path)
    yield own
    switch.use(PREGNANCY_CARD_PILOT)
