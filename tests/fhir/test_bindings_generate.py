"""The shipped table of required bindings is what the generator makes of the R4 definitions."""

from __future__ import annotations

import json
from typing import Any

from app.fhir.bindings_generate import OUTPUT, _descendants, _holder, required_bindings
from tests.external import fhir_r4_definitions


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
    assert required_bindings(fhir_r4_definitions()) == json.loads(OUTPUT.read_text())
