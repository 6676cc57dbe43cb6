"""What the tests need from outside the repository: reference data, Node tools, a browser, a message broker.

Elsewhere a missing piece skips its tests with a message that says how to provide it; in CI
(`HELSEBRO_CI=1`, set by `.ci/run`, which also installs or locates each piece) it fails the run, so a
green CI run never hides a skipped check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = os.environ.get("HELSEBRO_CI", "") in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Skip (or, in CI, fail) the current test because `reason` names something absent."""
    if IN_CI:
        pytest.fail(f"{reason} (mandatory in CI)", pytrace=False)
    pytest.skip(reason)


REPO = Path(__file__).resolve().parent.parent
# The reference data beside the repository (../shared/data): each kind has a setting of its own.
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(setting: str, default: str, marker: str) -> Path:
    """The directory `setting` names (default ../shared/data/<default>), holding `marker`; else missing()."""
    path = Path(os.environ.get(setting) or SHARED_DATA / default)
    if not (path / marker).exists():
        missing(f"{path / marker} not found: set {setting} (the reference data, ../shared/data/{default})")
    return path


def fhir_r4_definitions() -> Path:
    """The R4 definitions the generated tables are built from (search parameters, bindings, schemas)."""
    return shared_data("HELSEBRO_FHIR_R4_DIR", "fhir-r4", "profiles-resources.json.xz")
