"""validate_resource and parse_json as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry
from app.fhir.validate import MAX_DEPTH, check_id, parse_json, validate_resource
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


def test_hierarchical_required_value_sets_are_checked_whole() -> None:
    # Observation.status is "amended +" in the models (amended has child codes): the child codes pass,
    # and anything outside the expanded value set is refused, as in every other required binding.
    validate_resource(REGISTRY, {**observation(), "status": "corrected"})
    cases: list[tuple[dict[str, Any], str]] = [
        ({**observation(), "status": "bogus"}, "Observation.status"),
        ({"resourceType": "Encounter", "status": "bogus", "class": {"code": "AMB"}}, "Encounter.status"),
        (
            {"resourceType": "DiagnosticReport", "status": "bogus", "code": {"text": "x"}},
            "DiagnosticReport.status",
        ),
        ({"resourceType": "Task", "status": "bogus", "intent": "order"}, "Task.status"),
        (
            {**observation(), "valueQuantity": {"value": 5, "comparator": "~"}},
            "Observation.valueQuantity.comparator",
        ),
        (
            {
                **observation(),
                "component": [{"code": {"text": "x"}, "valueQuantity": {"value": 1, "comparator": "~"}}],
            },
            "Observation.component[0].valueQuantity.comparator",
        ),
    ]
    for resource, where in cases:
        error = rejected(resource)
        assert error.issue_code == "code-invalid", where
        assert error.expression == (where,)


def test_codes_of_value_sets_that_cannot_be_enumerated_are_left_alone() -> None:
    # Attachment.contentType is bound to BCP 13 (every mime type): not enumerable, so not checked.
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"contentType": "application/x-helsebro-test"}}],
    }
    validate_resource(REGISTRY, document)


def test_a_required_coded_element_needs_a_coding_from_its_value_set() -> None:
    clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/kari"}}
    validate_resource(
        REGISTRY, {**condition, "clinicalStatus": {"coding": [{"system": clinical, "code": "active"}]}}
    )
    # R4's hierarchy: recurrence and relapse are kinds of active.
    validate_resource(
        REGISTRY, {**condition, "clinicalStatus": {"coding": [{"system": clinical, "code": "relapse"}]}}
    )
    wrong = rejected({**condition, "clinicalStatus": {"coding": [{"system": clinical, "code": "bogus"}]}})
    assert wrong.expression == ("Condition.clinicalStatus.coding[0].code",)
    text_only = rejected({**condition, "clinicalStatus": {"text": "aktiv"}})
    assert text_only.expression == ("Condition.clinicalStatus",)
    assert "required value set" in text_only.message


def test_repeated_json_keys_are_refused_at_any_depth() -> None:
    for body in (
        b'{"resourceType": "Patient", "gender": "male", "gender": "female"}',
        b'{"resourceType": "Patient", "name": [{"family": "A", "given": ["B"], "family": "C"}]}',
    ):
        with pytest.raises(FhirError) as info:
            parse_json(body)
        assert info.value.category is Category.INVALID
        assert "occurs more than once" in info.value.message
    # the same key in different objects, and a key inside a string, are not repeats
    parse_json(b'{"a": {"x": 1}, "b": {"x": 2}, "c": "\\"a\\": 1"}')


def test_json_nested_beyond_the_parsers_stack_is_400() -> None:
    with pytest.raises(FhirError) as info:
        parse_json(b"[" * 1000 + b"]" * 1000)
    assert info.value.category is Category.INVALID


def nested_extensions(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/x", "valueString": "v"}
    for _ in range(levels):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


def test_nesting_deeper_than_the_limit_is_400_not_a_recursion_error() -> None:
    validate_resource(REGISTRY, nested_extensions(MAX_DEPTH // 2 - 2))
    error = rejected(nested_extensions(150))
    assert error.category is Category.INVALID
    assert "nested more than" in error.message
    assert error.expression[0].startswith("Patient.extension[0].extension[0]")


@pytest.mark.parametrize("char", ["\u0000", "\u0001", "\u0008", "\u000b", "\u001f"])
def test_control_characters_in_strings_are_refused_naming_the_element(char: str) -> None:
    body = patient()
    body["name"][0]["given"] = ["Kari", f"a{char}b"]
    error = rejected(body)
    assert error.category is Category.INVALID
    assert error.expression == ("Patient.name[0].given[1]",)
    assert f"U+{ord(char):04X}" in error.message


def test_tab_cr_and_lf_are_allowed_in_strings() -> None:
    body = observation()
    body["note"] = [{"text": "line 1\r\n\tline 2"}]
    validate_resource(REGISTRY, body)


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/1",
        "Patient/a-b.c",
        "Patient/1/_history/2",
        "#",
        "#contained-1",
        "urn:uuid:2f3c1c34-6d5a-4a5e-9a43-0e2f8c1b7d10",
        "urn:oid:2.16.578.1.12.4.1.4.1",
        "http://example.org/fhir/Patient/1",
        "https://fhir.example.no/R4/Patient/1/_history/3",
        "Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|13097248022",
    ],
)
def test_valid_literal_references_pass(reference: str) -> None:
    body = observation()
    body["subject"] = {"reference": reference}
    validate_resource(REGISTRY, body)


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/1' OR 1=1",
        "Patient/1 --",
        "Patient/",
        "patient/1",
        "Patient/1/2",
        "Patient/" + "x" * 65,
        "Patient/1/_history/",
        "1",
        "#bad id",
        "urn:uuid:not-a-uuid",
        "urn:oid:abc",
        "http://example.org/Patient/1 OR 1=1",
        "Patient? identifier=x",
    ],
)
def test_references_of_no_valid_form_are_refused_naming_the_element(reference: str) -> None:
    body = observation()
    body["subject"] = {"reference": reference, "display": "Kari"}
    error = rejected(body)
    assert error.category is Category.INVALID
    assert "Observation.subject.reference" in expressions(error)


def test_uri_elements_named_reference_are_not_references() -> None:
    # Expression.reference is a uri beside other keys: not taken for Reference.reference
    body = {
        "resourceType": "PlanDefinition",
        "status": "draft",
        "action": [
            {
                "condition": [
                    {"kind": "applicability", "expression": {"language": "text/fhirpath", "reference": "x y"}}
                ]
            }
        ],
    }
    validate_resource(REGISTRY, body)
