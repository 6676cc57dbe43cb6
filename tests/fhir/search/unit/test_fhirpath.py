"""The FHIRPath subset used for index extraction: compile once, evaluate on FHIR JSON."""

from __future__ import annotations

from typing import Any

import pytest

from app.fhir.registry import standard_search_params
from app.fhir.search.fhirpath import (
    AsType,
    Child,
    ExpressionError,
    FieldEquals,
    First,
    Index,
    Node,
    ResolvesTo,
    TruthyFlag,
    choice_names,
    compile_expression,
    evaluate,
    evaluate_relative,
    reference_type,
    same_type,
)


@pytest.mark.parametrize(
    ("expression", "branches"),
    [
        ("Patient.name", (("Patient", (Child("name"),)),)),
        ("Patient.name.family", (("Patient", (Child("name"), Child("family"))),)),
        ("Observation.value as Quantity", (("Observation", (Child("value"), AsType("Quantity"))),)),
        (
            "(Observation.value as Quantity) | (Observation.value as SampledData)",
            (
                ("Observation", (Child("value"), AsType("Quantity"))),
                ("Observation", (Child("value"), AsType("SampledData"))),
            ),
        ),
        ("Condition.onset.as(dateTime)", (("Condition", (Child("onset"), AsType("dateTime"))),)),
        ("Observation.value.ofType(Quantity)", (("Observation", (Child("value"), AsType("Quantity"))),)),
        (
            "Observation.subject.where(resolve() is Patient)",
            (("Observation", (Child("subject"), ResolvesTo("Patient"))),),
        ),
        (
            "Patient.telecom.where(system='phone')",
            (("Patient", (Child("telecom"), FieldEquals("system", "phone"))),),
        ),
        ("Bundle.entry[0].resource", (("Bundle", (Child("entry"), Index(0), Child("resource"))),)),
        ("Patient.name.first()", (("Patient", (Child("name"), First())),)),
        (
            "(Observation.value as CodeableConcept).text",
            (("Observation", (Child("value"), AsType("CodeableConcept"), Child("text"))),),
        ),
        (
            "Patient.deceased.exists() and Patient.deceased != false",
            (("Patient", (TruthyFlag("deceased"),)),),
        ),
        ("Resource.meta.tag", (("Resource", (Child("meta"), Child("tag"))),)),
    ],
)
def test_compile(expression: str, branches: tuple[Any, ...]) -> None:
    assert compile_expression(expression) == branches


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "Patient.name.select(given)",
        "Patient.active and Patient.gender",
        "Patient.name.exists()",
        "Patient.gender != 'male'",
        "%resource.id",
        "Patient.name.where(given.startsWith('K'))",
    ],
)
def test_unsupported_expressions_do_not_compile(expression: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(expression)


def test_compile_is_cached() -> None:
    assert compile_expression("Patient.birthDate") is compile_expression("Patient.birthDate")


def test_most_standard_parameters_compile() -> None:
    """The registry drops what does not compile; nearly every R4 parameter must be inside the subset."""
    params = [p for p, _ in standard_search_params() if p.expression and p.type != "composite"]
    failing = []
    for param in params:
        try:
            compile_expression(param.expression)
        except ExpressionError:
            failing.append(param.code)
    assert len(failing) < len(params) // 20, failing


PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p",
    "meta": {"tag": [{"code": "a"}]},
    "name": [{"family": "Ås", "given": ["Åse", "Kari"]}, {"family": "Berg"}],
    "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "k@x.no"}],
    "deceasedBoolean": False,
    "generalPractitioner": [{"reference": "Practitioner/d"}, {"reference": "Organization/o"}],
}


def values(expression: str, resource: dict[str, Any]) -> list[Any]:
    return [node.value for node in evaluate(compile_expression(expression), resource)]


def test_evaluate_paths_flatten_lists() -> None:
    assert values("Patient.name.family", PATIENT) == ["Ås", "Berg"]
    assert values("Patient.name.given", PATIENT) == ["Åse", "Kari"]
    assert values("Patient.name.first().family", PATIENT) == ["Ås"]
    assert values("Patient.name[1].family", PATIENT) == ["Berg"]
    assert values("Patient.birthDate", PATIENT) == []


def test_evaluate_only_on_its_own_root_type() -> None:
    assert values("Observation.code", PATIENT) == []
    assert values("Resource.meta.tag", PATIENT) == [{"code": "a"}]
    assert values("Patient.name.family | Observation.code", PATIENT) == ["Ås", "Berg"]


def test_evaluate_where() -> None:
    assert values("Patient.telecom.where(system='email')", PATIENT) == [
        {"system": "email", "value": "k@x.no"}
    ]
    assert values("Patient.generalPractitioner.where(resolve() is Organization)", PATIENT) == [
        {"reference": "Organization/o"}
    ]


@pytest.mark.parametrize(
    ("reference", "kept"),
    [
        ("Patient/1", True),
        ("Patient/1/_history/2", True),
        ("http://fhir.test/Patient/1", True),
        ("http://fhir.test/Patient/1/_history/2", True),
        ("Group/1", False),
        ("#contained", False),
    ],
)
def test_resolve_is_by_reference_type(reference: str, kept: bool) -> None:
    observation = {"resourceType": "Observation", "subject": {"reference": reference}}
    found = values("Observation.subject.where(resolve() is Patient)", observation)
    assert found == ([{"reference": reference}] if kept else [])


def test_resolve_finds_contained_resources_by_their_type() -> None:
    observation = {
        "resourceType": "Observation",
        "contained": [{"resourceType": "Patient", "id": "newborn"}, {"resourceType": "Group", "id": "g"}],
        "subject": {"reference": "#newborn"},
        "focus": [{"reference": "#g"}, {"reference": "#missing"}, {"reference": "#"}],
    }
    assert values("Observation.subject.where(resolve() is Patient)", observation) == [
        {"reference": "#newborn"}
    ]
    assert values("Observation.focus.where(resolve() is Group)", observation) == [{"reference": "#g"}]
    # `#` is the containing resource itself.
    assert values("Observation.focus.where(resolve() is Observation)", observation) == [{"reference": "#"}]
    assert reference_type({"reference": "#newborn"}) is None  # no resource to look in
    assert reference_type({"reference": "#x"}, {"contained": [{"id": "x"}]}) is None  # no resourceType


@pytest.mark.parametrize(
    ("hint", "type_name", "passes"),
    [
        (None, "Quantity", True),  # no type known (not a choice element): kept
        ("Quantity", "Quantity", True),
        ("DateTime", "dateTime", True),
        ("Canonical", "uri", True),
        ("Url", "uri", True),
        ("Uri", "canonical", False),  # a uri is not a canonical
        ("Code", "string", True),
        ("Markdown", "string", True),
        ("PositiveInt", "integer", True),
        ("Age", "Quantity", True),
        ("SimpleQuantity", "Quantity", True),
        ("Quantity", "Age", False),
        ("Range", "Quantity", False),
        ("Date", "dateTime", False),  # separate primitives, no specialisation
        ("String", "uri", False),
    ],
)
def test_as_keeps_a_type_and_its_specialisations(hint: str | None, type_name: str, passes: bool) -> None:
    assert same_type(hint, type_name) is passes


def test_as_on_a_choice_keeps_specialisations() -> None:
    canonical = {"resourceType": "ConceptMap", "sourceCanonical": "http://x/vs"}
    uri = {"resourceType": "ConceptMap", "sourceUri": "http://x/vs"}
    assert values("(ConceptMap.source as uri)", canonical) == ["http://x/vs"]
    assert values("(ConceptMap.source as uri)", uri) == ["http://x/vs"]
    assert values("(ConceptMap.source as canonical)", uri) == []
    # The node keeps its own type: a canonical taken `as uri` is still a canonical.
    assert [n.type_hint for n in evaluate(compile_expression("ConceptMap.source as uri"), canonical)] == [
        "Canonical"
    ]


def test_choice_types() -> None:
    quantity = {"resourceType": "Observation", "valueQuantity": {"value": 1}}
    text = {"resourceType": "Observation", "valueString": "x"}
    nodes = evaluate(compile_expression("Observation.value as Quantity"), quantity)
    assert nodes == [Node({"value": 1}, "Quantity")]
    assert values("Observation.value as Quantity", text) == []
    assert values("Observation.value", text) == ["x"]
    onset = {"resourceType": "Condition", "onsetDateTime": "2021"}
    assert values("Condition.onset.as(dateTime)", onset) == ["2021"]
    assert values("Condition.onset.as(Period)", onset) == []
    # valueQuantityX is no choice of `value`, and `valuex` is not either.
    assert values("Observation.value", {"resourceType": "Observation", "valuex": 1}) == []


def test_truthy_flag() -> None:
    assert values("Patient.deceased.exists() and Patient.deceased != false", PATIENT) == [False]
    dead = {"resourceType": "Patient", "deceasedDateTime": "2020"}
    assert values("Patient.deceased.exists() and Patient.deceased != false", dead) == [True]
    unknown = {"resourceType": "Patient"}
    assert values("Patient.deceased.exists() and Patient.deceased != false", unknown) == [False]


def test_evaluate_relative_for_composite_components() -> None:
    component = {"code": {"text": "x"}, "valueQuantity": {"value": 2}}
    assert [n.value for n in evaluate_relative(compile_expression("code"), component)] == [{"text": "x"}]
    assert [n.value for n in evaluate_relative(compile_expression("value.as(Quantity)"), component)] == [
        {"value": 2}
    ]


def test_only_choice_elements_are_looked_for_by_prefix() -> None:
    names = choice_names()
    assert {"value", "effective", "deceased", "onset", "multipleBirth"} <= names
    assert not {"status", "identifier", "gender"} & names  # subject is one: PlanDefinition.subject[x]
    observation = {"resourceType": "Observation", "valueQuantity": {"value": 1}, "statusX": "final"}
    assert [n.type_hint for n in evaluate(compile_expression("Observation.value"), observation)] == [
        "Quantity"
    ]
    assert evaluate(compile_expression("Observation.status"), observation) == []  # not a choice element
