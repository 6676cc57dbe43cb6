"""Paths for the KITH adapter tests: own fixtures, and the official legacy reference data (not in the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.adapters.kith.xsd import XsdValidator
from tests.external import SHARED_DATA, shared_data

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def legacy_dir() -> Path | None:
    """HELSEBRO_LEGACY_DIR, default <repo>/../shared/data/legacy; None when absent."""
    path = Path(os.environ.get("HELSEBRO_LEGACY_DIR") or SHARED_DATA / "legacy")
    return path if path.is_dir() else None


def legacy_files(pattern: str) -> list[object]:
    """Parametrisation over legacy files; when the data is absent, one parameter that needs the `legacy`
    fixture, which skips it (fails it in CI)."""
    root = legacy_dir()
    if root is None:
        return [pytest.param(None, marks=pytest.mark.usefixtures("legacy"), id="legacy-data-missing")]
    return [pytest.param(p, id=p.name) for p in sorted(root.glob(pattern))]


@pytest.fixture(scope="session")
def legacy() -> Path:
    return shared_data("HELSEBRO_LEGACY_DIR", "legacy", "xsd")


@pytest.fixture(scope="session")
def validator(legacy: Path) -> XsdValidator:
    return XsdValidator(legacy / "xsd")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
