"""The extension check agrees with fhir.resources' Extension model, and validate_resource's verdicts and
errors are the models' whether the fast check passes or not."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from app.fhir.outcome import FhirError
from app.fhir.registry import Registry
from app.fhir.validate import validate_resource
from app.fhir.validate_extensions import extensions_valid, split_extensions
from tests.fhir.fixtures import patient

REGISTRY = Registry.standard()
EXTENSION = get_fhir_model_class("Extension")
URL = "http://example.org/fhir/StructureDefinition/x"

VALID: list[dict[str, Any]] = [
    {"url": URL, "valueString": "tekst"},
    {"url": URL, "valueBoolean": True},
    {"url": URL, "valueInteger": 3},
    {"url": URL, "valueDecimal": 2.5},
    {"url": URL, "valueDate": "2026-12-07"},
    {"url": URL, "valueDateTime": "2026-12-07T10:15:00+01:00"},
    {"url": URL, "valueCode": "a"},
    {"url": URL, "valueUri": "urn:oid:2.16.578.1.12.4.1.1.7010"},
    {"url": URL, "valueCodeableConcept": {"coding": [{"system": "urn:x", "code": "1", "display": "Én"}]}},
    {"url": URL, "valueCoding": {"system": "urn:x", "code": "1"}},
    {"url": URL, "valueReference": {"reference": "Patient/p1"}},
    {"url": URL, "valuePeriod": {"start": "2026-01-01", "end": "2026-02-01"}},
    {"url": URL, "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org"}},
    {"url": URL, "valueIdentifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "123"}},
    {
        "url": URL,
        "id": "e1",
        "extension": [{"url": "a", "valueString": "x"}, {"url": "b", "valueInteger": 1}],
    },
    {"url": URL, "extension": [{"url": "a", "extension": [{"url": "b", "valueString": "deep"}]}]},
    {"url": URL},  # ext-1 (value or extensions) is an invariant the models do not check either
]

INVALID: list[dict[str, Any]] = [
    {"valueString": "no url"},
    {"url": URL, "valueString": "a", "valueInteger": 1},  # two values
    {"url": URL, "valueDate": "2026-13-45"},
    {"url": URL, "valueDateTime": "yesterday"},
    {"url": URL, "valueInteger": "many"},
    {"url": URL, "valueFoo": "unknown type"},
    {"url": URL, "_valueString": {"id": "x"}},  # the R4B model has no primitive siblings here
    {"url": URL, "color": "red"},
    {"url": URL, "valueCodeableConcept": {"coding": "not a list"}},
    {"url": URL, "valueReference": {"reference": "Patient/p1", "nonsense": 1}},
    {"url": URL, "extension": [{"valueString": "inner without url"}]},
    {"url": URL, "extension": "not a list"},
    {"url": URL, "extension": [{"url": "a", "valueDate": "not a date"}]},
    {"url": 17, "valueString": "x"},
]


def model_accepts(extension: dict[str, Any]) -> bool:
    try:
        EXTENSION.model_validate(extension)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize("extension", VALID)
def test_what_the_model_accepts_is_valid(extension: dict[str, Any]) -> None:
    assert model_accepts(extension)
    assert extensions_valid([[extension]])


@pytest.mark.parametrize("extension", INVALID)
def test_what_the_model_refuses_is_never_called_valid(extension: dict[str, Any]) -> None:
    assert not model_accepts(extension)
    assert not extensions_valid([[extension]])


def test_non_objects_in_a_list_are_left_to_the_models() -> None:
    assert not extensions_valid([["a string"]])
    assert not extensions_valid([[None]])


def test_split_takes_every_list_out_and_shares_what_it_leaves() -> None:
    name = {"family": "Nordmann", "given": ["Kari"]}
    sibling = {"extension": [{"url": URL, "valueString": "x"}]}
    body = {
        "resourceType": "Patient",
        "extension": [{"url": URL, "valueString": "top"}],
        "modifierExtension": [{"url": URL, "valueBoolean": False}],
        "name": [name],
        "address": [{"city": "Bergen", "extension": [{"url": URL, "valueCode": "b"}]}],
        "_birthDate": sibling,
        "birthDate": "1980-01-01",
    }
    original = copy.deepcopy(body)
    stripped, lists = split_extensions(body)
    assert body == original  # the input is not changed
    assert stripped == {
        "resourceType": "Patient",
        "name": [{"family": "Nordmann", "given": ["Kari"]}],
        "address": [{"city": "Bergen"}],
        "_birthDate": sibling,
        "birthDate": "1980-01-01",
    }
    assert stripped["name"] is body["name"]
    assert stripped["_birthDate"] is sibling
    assert sorted(len(found) for found in lists) == [1, 1, 1]
    plain = patient()
    assert split_extensions(plain) == (plain, [])
    assert split_extensions(plain)[0] is plain


def with_extension(extension: dict[str, Any], where: str) -> dict[str, Any]:
    body = patient()
    if where == "top":
        body["extension"] = [extension]
    else:
        body["name"] = [{"family": "Nordmann", "extension": [extension]}]
    return body


@pytest.mark.parametrize("where", ["top", "nested"])
@pytest.mark.parametrize("extension", INVALID)
def test_an_invalid_extension_gets_the_models_own_error(extension: dict[str, Any], where: str) -> None:
    body = with_extension(extension, where)
    with pytest.raises(FhirError) as info:
        validate_resource(REGISTRY, body)
    # The same verdict as the model of the whole resource gives.
    with pytest.raises(ValidationError):
        REGISTRY.get("Patient").model.model_validate(body)  # type: ignore[union-attr]
    assert info.value.expression[0].startswith("Patient")


@pytest.mark.parametrize("extension", VALID)
def test_a_valid_extension_passes_anywhere(extension: dict[str, Any]) -> None:
    for where in ("top", "nested"):
        body = with_extension(extension, where)
        assert validate_resource(REGISTRY, body) is body


def test_a_resource_error_beside_valid_extensions_is_reported_as_the_models() -> None:
    body = with_extension({"url": URL, "valueString": "ok"}, "top")
    body["birthDate"] = "not a date"
    with pytest.raises(FhirError) as info:
        validate_resource(REGISTRY, body)
    assert "Patient.birthDate" in info.value.expression
