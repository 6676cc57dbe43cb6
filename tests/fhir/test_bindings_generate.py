"""The shipped table of required bindings is what the generator makes of the R4 definitions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from app.fhir.bindings_generate import OUTPUT, _descendants, _holder, required_bindings

REPO = Path(__file__).resolve().parents[2]
SKIP = "R4 definitions not found: set HELSEBRO_FHIR_R4_DIR (../shared/data/fhir-r4)"


def definitions() -> Path | None:
    path = Path(os.environ.get("HELSEBRO_FHIR_R4_DIR") or REPO.parent / "shared" / "data" / "fhir-r4")
    return path if (path / "profiles-resources.json.xz").is_file() else None


def test_holders_are_the_models_class_names() -> None:
    assert _holder("Observation.status") == "Observation.status"
    assert _holder("Observation.referenceRange.type") == "ObservationReferenceRange.type"
    assert _holder("Bundle.entry.request.method") == "BundleEntryRequest.method"


def test_is_a_takes_the_code_and_everything_below_it() -> None:
    concepts: list[dict[str, Any]] = [
        {"code": "active", "concept": [{"code": "recurrence"}, {"code": "relapse"}]},
        {"code": "inactive"},
    ]
    assert sorted(_descendants(concepts, "active")) == ["active", "recurrence", "relapse"]
    assert list(_descendants(concepts, "inactive")) == ["inactive"]


def test_the_shipped_table_has_not_drifted() -> None:
    source = definitions()
    if source is None:
        pytest.skip(SKIP)
    assert required_bindings(source) == json.loads(OUTPUT.read_text())
