"""Own fixtures of the e-resept tests (the legacy reference data comes from tests/adapters/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from tests.security.conftest import world

__all__ = ["FIXTURES", "fixture_bytes", "world"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
