"""PLO samples from the legacy reference data (HELSEBRO_LEGACY_DIR); the tests skip without them."""

from __future__ import annotations

import pytest

from tests.adapters.legacy import legacy_dir, legacy_files

SAMPLES = "samples/plo/**/*.xml"

__all__ = ["SAMPLES", "legacy_files", "sample"]


def sample(name: str) -> bytes:
    """A sample by file name (any folder); skips without the reference data."""
    root = legacy_dir()
    if root is None:
        pytest.skip("legacy reference data not found: set HELSEBRO_LEGACY_DIR")
    found = sorted(root.glob(f"samples/plo/**/{name}"))
    assert found, name
    return found[0].read_bytes()
