"""Paths for the KITH adapter tests: own fixtures, and the official legacy reference data (not in the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.adapters.kith.xsd import XsdValidator

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SKIP_LEGACY = "legacy reference data not found: set HELSEBRO_LEGACY_DIR"


def legacy_dir() -> Path | None:
    """HELSEBRO_LEGACY_DIR, default <repo>/../shared/data/legacy; None when absent."""
    path = Path(os.environ.get("HELSEBRO_LEGACY_DIR") or REPO.parent / "shared" / "data" / "legacy")
    return path if path.is_dir() else None


def legacy_files(pattern: str) -> list[object]:
    """Parametrisation over legacy files; one skipped parameter when the data is absent."""
    root = legacy_dir()
    if root is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_LEGACY))]
    return [pytest.param(p, id=p.name) for p in sorted(root.glob(pattern))]


@pytest.fixture(scope="session")
def legacy() -> Path:
    root = legacy_dir()
    if root is None:
        pytest.skip(SKIP_LEGACY)
    return root


@pytest.fixture(scope="session")
def validator(legacy: Path) -> XsdValidator:
    if not (legacy / "xsd").is_dir():
        pytest.skip(SKIP_LEGACY)
    return XsdValidator(legacy / "xsd")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
