"""validate_resource and parse_json as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry
from app.fhir.validate import check_id, parse_json, validate_resource
from tests.fhir.fixtures import observation, patient

REGISTRY = Registry.standard()


def rejected(resource: Any, expected_type: str | None = None) -> FhirError:
    with pytest.raises(FhirError) as info:
        validate_resource(REGISTRY, resource, expected_type)
    return info.value


def expressions(error: FhirError) -> set[str]:
    found = {e for e in error.expression}
    for issue in error.extra_issues:
        found.update(issue.expression)
    return found


def test_valid_resources_pass_unchanged() -> None:
    body = patient()
    assert validate_resource(REGISTRY, body, "Patient") is body
    validate_resource(REGISTRY, observation())


def test_required_element_missing() -> None:
    body = observation()
    del body["code"]
    error = rejected(body)
    assert error.category is Category.INVALID
    assert "Observation.code" in expressions(error)


def test_choice_type_with_two_values() -> None:
    body = {**observation(), "valueString": "also"}
    assert rejected(body).category is Category.INVALID


def test_empty_objects_arrays_strings_and_nulls() -> None:
    assert "Patient.name[0]" in expressions(rejected({**patient(), "name": [{}]}))
    assert "Patient.identifier" in expressions(rejected({**patient(), "identifier": []}))
    assert "Patient.gender" in expressions(rejected({**patient(), "gender": " "}))
    assert "Patient.birthDate" in expressions(rejected({**patient(), "birthDate": None}))
    assert "Patient.name[0].given[1]" in expressions(
        rejected({**patient(), "name": [{"given": ["A", None]}]})
    )


def test_null_keeps_a_primitive_array_aligned_with_its_extensions() -> None:
    body = {
        **patient(),
        "name": [
            {
                "given": ["Ola", None],
                "_given": [None, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}],
            }
        ],
    }
    validate_resource(REGISTRY, body)


def test_type_and_id_checks() -> None:
    assert rejected(patient(), "Observation").expression == ("resourceType",)
    assert rejected({"name": []}).expression == ("resourceType",)
    assert rejected({"resourceType": "Unicorn"}).category is Category.NOT_FOUND
    assert rejected([patient()]).category is Category.INVALID
    assert rejected({**patient(), "id": "has space"}).category is Category.INVALID
    assert rejected({**patient(), "contained": [{"resourceType": "Unicorn"}]}).category is Category.INVALID
    check_id("A-Za-z0-9.-" + "x" * 53)
    with pytest.raises(FhirError):
        check_id("x" * 65)


def test_parse_json() -> None:
    assert parse_json(b'{"a": "\xc3\x85se"}') == {"a": "Åse"}
    with pytest.raises(FhirError):
        parse_json(b"{")
    with pytest.raises(FhirError):
        parse_json(b"   ")


def test_codes_outside_a_required_value_set_are_rejected() -> None:
    error = rejected({**patient(), "gender": "mann"})
    assert error.issue_code == "code-invalid"
    assert error.expression == ("Patient.gender",)
    nested = rejected({**patient(), "name": [{"use": "weird", "family": "X"}]})
    assert nested.expression == ("Patient.name[0].use",)


def test_codes_of_open_value_sets_are_left_alone() -> None:
    # Observation.status lists "amended +": amended has child codes, so the list is not closed.
    validate_resource(REGISTRY, {**observation(), "status": "corrected"})
