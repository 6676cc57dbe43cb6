"""The official legacy reference data (samples and XSDs, not in the repo) for the adapter tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.external import SHARED_DATA

# Marks the stand-in parameter when the data is absent; tests/adapters/conftest.py skips it (fails in CI).
LEGACY_MISSING = pytest.mark.legacy_data_missing


def legacy_dir() -> Path | None:
    """HELSEBRO_LEGACY_DIR, default <repo>/../shared/data/legacy; None when absent."""
    path = Path(os.environ.get("HELSEBRO_LEGACY_DIR") or SHARED_DATA / "legacy")
    return path if path.is_dir() else None


def legacy_files(pattern: str) -> list[object]:
    """Parametrisation over legacy files; when the data is absent, one marked stand-in parameter.

    (pytest 9 no longer lets `pytest.param` carry `usefixtures`, hence the marker and the autouse guard.)
    """
    root = legacy_dir()
    if root is None:
        return [pytest.param(None, marks=LEGACY_MISSING, id="legacy-data-missing")]
    return [pytest.param(p, id=p.name) for p in sorted(root.glob(pattern))]
