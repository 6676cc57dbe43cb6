"""The e-resept tests reuse the KITH tests' access to the legacy reference data (samples and XSDs)."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.kith.conftest import legacy, validator

__all__ = ["FIXTURES", "fixture_bytes", "legacy", "validator"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
