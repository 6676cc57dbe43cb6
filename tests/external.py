"""What the tests need from outside the repository: reference data, Node tools, a browser.

Elsewhere a missing piece skips its tests with a message that says how to provide it; in CI
(`HELSEBRO_CI=1`, set by `.ci/run`, which also installs or locates each piece) it fails the run, so a
green CI run never hides a skipped check.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("HELSEBRO_CI", "") in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Skip (or, in CI, fail) the current test because `reason` names something absent."""
    if IN_CI:
        pytest.fail(f"{reason} (mandatory in CI)", pytrace=False)
    pytest.skip(reason)
