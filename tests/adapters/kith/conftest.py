"""Paths for the KITH adapter tests: own fixtures, and the official legacy reference data (not in the repo)."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.legacy import legacy_dir, legacy_files

__all__ = ["FIXTURES", "REPO", "fixture_bytes", "legacy_dir", "legacy_files"]

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
