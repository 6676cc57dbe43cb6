"""The identifier walk and the before_write hook as pure functions (no database)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from app.fhir.hooks import Hooks, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry
from app.resources.no_basis import install, pack_search_parameters
from app.resources.no_basis.hook import check_identifiers, no_basis_identifiers
from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    HPR_SYSTEM,
    ID_TYPE_SYSTEM,
    ORGNR_SYSTEM,
    synthetic_fnr,
)
from app.resources.no_basis.walk import identifier_sites

FNR = synthetic_fnr(13, 9, 1972, 100)
BAD_FNR = FNR[:10] + str((int(FNR[10]) + 1) % 10)
HNR_TYPE = {"coding": [{"system": ID_TYPE_SYSTEM, "code": "HNR"}]}


def test_walk_finds_identifiers_everywhere() -> None:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [{"system": "urn:x", "value": "1"}],
        "subject": {"identifier": {"system": FNR_SYSTEM, "value": FNR}},
        "serviceProvider": {
            "identifier": {
                "system": ORGNR_SYSTEM,
                "value": "311900412",
                "assigner": {"identifier": {"system": "urn:y", "value": "2"}},
            }
        },
        "participant": [{"individual": {"identifier": {"system": HPR_SYSTEM, "value": "9100001"}}}],
        "extension": [{"url": "urn:e", "valueIdentifier": {"system": "urn:z", "value": "3"}}],
        "contained": [{"resourceType": "Organization", "identifier": [{"value": "4"}]}],
        "text": {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"},
    }
    assert [path for path, _ in identifier_sites(resource)] == [
        "Encounter.identifier[0]",
        "Encounter.subject.identifier",
        "Encounter.serviceProvider.identifier",
        "Encounter.serviceProvider.identifier.assigner.identifier",
        "Encounter.participant[0].individual.identifier",
        "Encounter.extension[0].valueIdentifier",
        "Encounter.contained[0].identifier[0]",
    ]


def test_walk_skips_element_definitions() -> None:
    definition = {
        "resourceType": "StructureDefinition",
        "identifier": [{"system": "urn:x", "value": "1"}],
        "snapshot": {"element": [{"id": "Patient.identifier", "patternIdentifier": {"system": FNR_SYSTEM}}]},
        "differential": {"element": [{"example": [{"label": "x", "valueIdentifier": {"value": BAD_FNR}}]}]},
    }
    assert [path for path, _ in identifier_sites(definition)] == ["StructureDefinition.identifier[0]"]


def test_aliases_are_normalised_in_place_and_then_checked() -> None:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "http://hl7.no/fhir/NamingSystem/FNR", "value": FNR},
            {"system": "http://hl7.no/fhir/NamingSystem/FNR", "value": BAD_FNR},
        ],
    }
    issues = check_identifiers(resource)
    assert [i["system"] for i in resource["identifier"]] == [FNR_SYSTEM, FNR_SYSTEM]
    assert len(issues) == 1
    assert issues[0].diagnostics == (
        f"Patient.identifier[1]: fødselsnummer ({FNR_SYSTEM}) has a wrong check digit"
    )
    assert issues[0].expression == ("Patient.identifier[1].value",)
    assert issues[0].code == "value"


def test_unknown_systems_and_identifiers_without_value_pass() -> None:
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.3", "value": "abc"}, {"system": FNR_SYSTEM}],
    }
    assert check_identifiers(resource) == []


def test_h_nummer_needs_assigner_and_month_plus_40() -> None:
    h_nummer = "13497210083"
    good = {"type": HNR_TYPE, "system": "urn:oid:2.16.578.1.12.4.1.99", "value": h_nummer}
    resource = {
        "resourceType": "Patient",
        "identifier": [
            {**good, "assigner": {"display": "Sykehuset"}},
            good,
            {**good, "value": FNR, "assigner": {"display": "Sykehuset"}},
        ],
    }
    issues = check_identifiers(resource)
    assert [(i.expression, i.code) for i in issues] == [
        (("Patient.identifier[1].assigner",), "required"),
        (("Patient.identifier[2].value",), "value"),
    ]
    assert "H-nummer must have 40 added to the month of birth" in issues[1].diagnostics


async def test_hook_raises_422_with_every_problem_and_no_value() -> None:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "identifier": [{"system": ORGNR_SYSTEM, "value": "311900413"}],
        "contact": [{"name": {"text": "x"}}],
        "endpoint": [{"identifier": {"system": HPR_SYSTEM, "value": "abc"}}],
    }
    with pytest.raises(FhirError) as caught:
        await no_basis_identifiers(event(resource))
    error = caught.value
    assert error.category is Category.UNPROCESSABLE
    assert error.status == 422
    assert error.expression == ("Organization.identifier[0].value",)
    assert [i.expression for i in error.extra_issues] == [("Organization.endpoint[0].identifier.value",)]
    text = str(error.outcome())
    assert "organisasjonsnummer" in text
    assert "HPR-nummer" in text
    assert "311900413" not in text
    assert "abc" not in text


async def test_hook_ignores_deletes() -> None:
    await no_basis_identifiers(event(None))


def test_install_is_idempotent() -> None:
    registry, hooks = Registry.standard(), Hooks()
    install(registry, hooks)
    install(registry, hooks)
    assert list(hooks.before_write) == [no_basis_identifiers]
    for bases, param in pack_search_parameters():
        for base in bases:
            assert registry.types[base].search_params[param.code] == param


def event(resource: dict[str, Any] | None) -> WriteEvent:
    """A stand-in WriteEvent: the hook only reads `resource`."""
    return cast(WriteEvent, SimpleNamespace(resource=resource))
