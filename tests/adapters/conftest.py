"""Fixtures shared by the adapter tests: the legacy reference data and its XSD validator."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.adapters.kith.xsd import XsdValidator
from tests.external import shared_data


@pytest.fixture(scope="session")
def legacy() -> Path:
    return shared_data("HELSEBRO_LEGACY_DIR", "legacy", "xsd")


@pytest.fixture(scope="session")
def validator(legacy: Path) -> XsdValidator:
    return XsdValidator(legacy / "xsd")


@pytest.fixture(autouse=True)
def _legacy_data_required(request: pytest.FixtureRequest) -> None:
    """A test parametrised with the stand-in for absent legacy data skips (fails in CI) here."""
    if request.node.get_closest_marker("legacy_data_missing") is not None:
        request.getfixturevalue("legacy")
