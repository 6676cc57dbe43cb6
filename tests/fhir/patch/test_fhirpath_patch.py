"""FHIRPath Patch engine as a pure function: the path subset, every operation type and the error split."""

from __future__ import annotations

from typing import Any

import pytest

from app.fhir.outcome import Category, FhirError
from app.fhir.patch.elements import resource_model
from app.fhir.patch.fhirpath import Index, Name, Where, parse_path
from app.fhir.patch.fhirpath_patch import apply_fhirpath_patch, parse_fhirpath_patch
from tests.fhir.patch.builders import operation, params

PATIENT = resource_model("Patient")
OID = "urn:oid:2.16.578.1.12.4.1.4.1"


def resource() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:other", "value": "a"}, {"system": OID, "value": "13097248022"}],
        "name": [{"use": "official", "family": "Nordmann", "given": ["Kari", "Anne"]}],
        "telecom": [
            {"system": "phone", "value": "11111111"},
            {"system": "email", "value": "kari@example.no"},
        ],
        "gender": "female",
        "deceasedBoolean": False,
    }


def patched(*ops: dict[str, Any], doc: dict[str, Any] | None = None) -> dict[str, Any]:
    return apply_fhirpath_patch(doc or resource(), parse_fhirpath_patch(params(*ops), "Patient"), PATIENT)


def failure(*ops: dict[str, Any]) -> FhirError:
    with pytest.raises(FhirError) as caught:
        patched(*ops)
    return caught.value


def test_parse_path_subset() -> None:
    path = parse_path("Patient.telecom.where(system='phone' and use='home').value[0].first()", "Patient")
    assert path.steps == (
        Name("telecom"),
        Where(((("system",), "phone"), (("use",), "home"))),
        Name("value"),
        Index(0),
        Index(0),
    )
    assert parse_path("name.given", "Patient").steps == (Name("name"), Name("given"))
    escaped = parse_path(r"Patient.name.where(family='O\'Neil')", "Patient").steps[1]
    assert escaped == Where(((("family",), "O'Neil"),))
    flags = parse_path("Patient.link.where(other.display='x' and active=true and rank=2)", "Patient").steps[1]
    assert flags == Where(((("other", "display"), "x"), (("active",), True), (("rank",), 2)))


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("Patient.name.given.exists()", "exists()"),
        ("Patient.telecom.where(system!='phone')", "!"),
        ("Patient.name | Patient.telecom", "|"),
        ("Patient.extension('http://x')", "extension()"),
        ("Patient.name[-1]", "negative"),
        ("Observation.code", "must start with Patient"),
        ("Patient.name.where(given=family)", "literal"),
        ("Patient.name.where($this='x')", "$"),
        ("Patient..name", "expected ident"),
    ],
)
def test_unsupported_expressions_are_422_and_named(path: str, named: str) -> None:
    error = failure(operation("delete", path))
    assert error.status == 422
    assert error.issue_code == "not-supported"
    assert path in error.message
    assert named in error.message
    assert error.expression == (path,)


def test_replace_with_where_filter() -> None:
    result = patched(operation("replace", "Patient.telecom.where(system='phone').value", value="22222222"))
    assert result["telecom"][0] == {"system": "phone", "value": "22222222"}
    assert result["telecom"][1]["value"] == "kari@example.no"
    oid = patched(operation("replace", f"Patient.identifier.where(system='{OID}').value", value="x"))
    assert [i["value"] for i in oid["identifier"]] == ["a", "x"]


def test_replace_choice_type_changes_the_json_key() -> None:
    result = patched(
        operation("replace", "Patient.deceased", value=("valueDateTime", "2024-01-02T03:04:05Z"))
    )
    assert "deceasedBoolean" not in result
    assert result["deceasedDateTime"] == "2024-01-02T03:04:05Z"
    same_type = patched(operation("replace", "Patient.deceasedBoolean", value=("valueBoolean", True)))
    assert same_type["deceasedBoolean"] is True
    wrong = failure(operation("replace", "Patient.deceased", value=("valueInteger", 3)))
    assert wrong.status == 422
    assert "allowed types: Boolean, DateTime" in wrong.message


def test_add_single_repeating_choice_and_complex_parts() -> None:
    doc = resource()
    del doc["deceasedBoolean"]
    added = patched(
        operation("add", "Patient", name="birthDate", value=("valueDate", "1972-09-13")),
        operation("add", "Patient", name="deceased", value=("valueBoolean", True)),
        operation("add", "Patient", name="address", value=("valueAddress", {"city": "Tromsø"})),
        operation("add", "Patient.name[0]", name="given", value=("valueString", "Marie")),
        operation(
            "add",
            "Patient",
            name="contact",
            value=[
                {"name": "name", "valueHumanName": {"family": "Hansen"}},
                {"name": "relationship", "valueCodeableConcept": {"text": "mor"}},
            ],
        ),
        doc=doc,
    )
    assert added["birthDate"] == "1972-09-13"
    assert added["deceasedBoolean"] is True
    assert added["address"] == [{"city": "Tromsø"}]  # repeating: created as a list
    assert added["name"][0]["given"] == ["Kari", "Anne", "Marie"]
    assert added["contact"] == [{"name": {"family": "Hansen"}, "relationship": [{"text": "mor"}]}]


def test_add_refuses_to_overwrite_and_unknown_elements() -> None:
    assert "already has a value" in failure(operation("add", "Patient", name="gender", value="male")).message
    assert (
        "already has"
        in failure(operation("add", "Patient", name="deceased", value=("valueBoolean", True))).message
    )
    assert (
        "not an element of Patient" in failure(operation("add", "Patient", name="colour", value="x")).message
    )
    assert (
        "matches nothing"
        in failure(operation("add", "Patient.maritalStatus", name="text", value="x")).message
    )


def test_insert_and_move() -> None:
    inserted = patched(
        operation("insert", "Patient.identifier", value=("valueIdentifier", {"value": "first"}), index=0),
        operation("insert", "Patient.name[0].given", value=("valueString", "Mid"), index=1),
        operation("insert", "Patient.address", value=("valueAddress", {"city": "Bodø"}), index=0),
    )
    assert [i["value"] for i in inserted["identifier"]] == ["first", "a", "13097248022"]
    assert inserted["name"][0]["given"] == ["Kari", "Mid", "Anne"]
    assert inserted["address"] == [{"city": "Bodø"}]
    moved = patched(operation("move", "Patient.telecom", source=1, destination=0))
    assert [t["system"] for t in moved["telecom"]] == ["email", "phone"]
    assert failure(operation("insert", "Patient.telecom", value=("valueString", "x"), index=5)).status == 422
    assert failure(operation("move", "Patient.telecom", source=0, destination=2)).status == 422
    assert (
        "not a repeating element"
        in failure(operation("insert", "Patient.gender", value=("valueCode", "x"), index=0)).message
    )
    assert (
        failure(operation("insert", "Patient.telecom[0]", value="x", index=0)).issue_code == "not-supported"
    )


def test_delete() -> None:
    deleted = patched(
        operation("delete", "Patient.telecom.where(system='email')"),
        operation("delete", "Patient.name.first().given[0]"),
        operation("delete", "Patient.gender"),
        operation("delete", "Patient.address"),  # no match: a no-op, not an error
    )
    assert deleted["telecom"] == [{"system": "phone", "value": "11111111"}]
    assert deleted["name"][0]["given"] == ["Anne"]
    assert "gender" not in deleted
    emptied = patched(operation("delete", "Patient.telecom[0]"), operation("delete", "Patient.telecom[0]"))
    assert "telecom" not in emptied  # FHIR JSON has no empty arrays
    assert "exactly one" in failure(operation("delete", "Patient.telecom")).message
    assert failure(operation("delete", "Patient")).status == 422


def test_delete_keeps_primitive_extensions_aligned() -> None:
    doc = resource()
    doc["name"][0]["_given"] = [{"extension": [{"url": "urn:x", "valueString": "k"}]}, None]
    result = patched(operation("delete", "Patient.name[0].given[1]"), doc=doc)
    assert result["name"][0]["given"] == ["Kari"]
    assert result["name"][0]["_given"] == [{"extension": [{"url": "urn:x", "valueString": "k"}]}]
    only = patched(operation("delete", "Patient.name[0].given[0]"), doc=doc)
    assert "_given" not in only["name"][0]


def test_where_compares_exactly_one_value() -> None:
    # given has two values: FHIRPath '=' is not true for a collection of two, so nothing matches.
    assert (
        "matches nothing"
        in failure(operation("replace", "Patient.name.where(given='Kari').family", value="X")).message
    )
    assert "exactly one" in failure(operation("replace", "Patient.telecom.value", value="X")).message


def test_operations_apply_in_order_atomically_without_touching_the_input() -> None:
    doc = resource()
    before = resource()
    with pytest.raises(FhirError):
        patched(
            operation("delete", "Patient.gender"),
            operation("replace", "Patient.birthDate", value="x"),
            doc=doc,
        )
    assert doc == before


@pytest.mark.parametrize(
    "document",
    [
        {"resourceType": "Patient"},
        {"resourceType": "Parameters"},
        params({"name": "op", "part": []}),
        params({"name": "operation", "part": [{"name": "path", "valueString": "Patient.gender"}]}),
        params(operation("remove", "Patient.gender")),
        params(operation("add", "Patient", name="gender")),  # no value
        params(operation("insert", "Patient.name", value="x")),  # no index
        params(operation("move", "Patient.name", source=0)),
        params(operation("insert", "Patient.name", value="x", index=("valueInteger", -1))),
        params(operation("replace", "Patient.gender", value="x", colour="red")),
        params(operation("replace", "Patient.gender", value=("valueCode", "x")) | {"part": []}),
    ],
)
def test_malformed_parameters_are_bad_requests(document: dict[str, Any]) -> None:
    with pytest.raises(FhirError) as caught:
        parse_fhirpath_patch(document, "Patient")
    assert caught.value.category is Category.INVALID
    assert caught.value.status == 400
