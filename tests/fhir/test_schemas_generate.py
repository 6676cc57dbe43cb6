"""The shipped R4 JSON schemas are what the generator makes of the R4 definitions, and they say what FHIR
JSON allows: the demo data and the server's own outcomes conform, malformed resources do not."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from app.demo import demo_resources
from app.fhir.schemas_generate import OUTPUT, REF, _backbone_name, r4_schemas
from tests.external import fhir_r4_definitions

SCHEMAS: dict[str, Any] = json.loads(OUTPUT.read_text())
# The free-form schema app/openapi.py gives contained and bundled resources.
ANY_RESOURCE = {"type": "object", "required": ["resourceType"]}


def valid(name: str, instance: Any) -> bool:
    """`instance` against the schema `name`, its references resolved in the table, as in the document."""
    document = {"$ref": REF + name, "components": {"schemas": {**SCHEMAS, "Resource": ANY_RESOURCE}}}
    return bool(jsonschema_rs.Draft202012Validator(document).is_valid(instance))


def test_the_shipped_schemas_have_not_drifted() -> None:
    assert r4_schemas(fhir_r4_definitions()) == SCHEMAS


def test_backbone_elements_are_named_by_their_path() -> None:
    assert _backbone_name("Patient.contact") == "Patient_Contact"
    assert _backbone_name("Observation.referenceRange") == "Observation_ReferenceRange"
    assert {"Patient_Contact", "Bundle_Entry_Request", "Questionnaire_Item"} <= set(SCHEMAS)


def test_every_demo_resource_conforms() -> None:
    for resource in demo_resources():
        assert valid(resource["resourceType"], resource), resource["id"]


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("Patient", {"resourceType": "Observation"}),  # another type
        ("Patient", {"resourceType": "Patient", "gender": "kvinne"}),  # outside its required value set
        ("Patient", {"resourceType": "Patient", "birthDate": "13.09.1972"}),  # not a FHIR date
        ("Patient", {"resourceType": "Patient", "name": []}),  # FHIR JSON has no empty arrays
        ("Patient", {"resourceType": "Patient", "name": {"family": "Nordmann"}}),  # a list, not an object
        ("Patient", {"resourceType": "Patient", "nickname": "Kari"}),  # no such element
        ("Observation", {"resourceType": "Observation", "code": {"text": "Puls"}}),  # status is required
        ("Observation", {"resourceType": "Observation", "status": "bogus", "code": {"text": "Puls"}}),
        ("Quantity", {"value": 1, "comparator": "~"}),
        ("Questionnaire_Item", {"linkId": "1", "type": "group", "item": [{"linkId": "1.1"}]}),  # no type
    ],
)
def test_malformed_content_does_not_conform(name: str, instance: Any) -> None:
    assert not valid(name, instance)


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        (
            "Observation",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "Puls"},
                "valueQuantity": {"value": 72, "unit": "/min"},
            },
        ),  # a choice, typed by its name
        (
            "Patient",
            {
                "resourceType": "Patient",
                "birthDate": "1972",
                "_birthDate": {"extension": [{"url": "http://example.org/precision", "valueCode": "year"}]},
            },
        ),  # a primitive's extension
        (
            "Questionnaire_Item",
            {"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string"}]},
        ),
        (
            "Bundle",
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Patient"}}],
            },
        ),  # entries hold any resource
    ],
)
def test_well_formed_content_conforms(name: str, instance: Any) -> None:
    assert valid(name, instance)
