"""The shipped search-parameter data: each R4 expression cut down to the base type it is stored under."""

from __future__ import annotations

import pytest

from app.fhir.registry import standard_search_params
from app.fhir.search.generate import split_expression


@pytest.mark.parametrize(
    ("expression", "base", "kept"),
    [
        ("Patient.name | Practitioner.name", "Patient", "Patient.name"),
        ("Patient.name | Practitioner.name", "Practitioner", "Practitioner.name"),
        ("(Group.value as Quantity) | Patient.x", "Group", "(Group.value as Quantity)"),
        ("Observation", "Observation", "Observation"),
        ("Observation | Observation.component", "Observation", "Observation | Observation.component"),
        ("Patient.name", "Group", ""),
        # R4's InsurancePlan name: paths relative to the resource apply to it.
        ("name | alias", "InsurancePlan", "InsurancePlan.name | InsurancePlan.alias"),
        ("(value as Quantity)", "Group", "(Group.value as Quantity)"),
    ],
)
def test_split_expression(expression: str, base: str, kept: str) -> None:
    assert split_expression(expression, base) == kept


def test_the_shipped_insurance_plan_name_has_its_expression() -> None:
    found = [p for p, base in standard_search_params() if base == "InsurancePlan" and p.code == "name"]
    assert [p.expression for p in found] == ["InsurancePlan.name | InsurancePlan.alias"]
