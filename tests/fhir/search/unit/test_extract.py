"""extract.index_rows: resource -> index rows, and the hashes searches look them up by."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from app.fhir.registry import Registry, ResourceType
from app.fhir.search.extract import IndexRows, identity_hash, index_rows, split_reference, value_rows
from app.fhir.search.hashing import hash64
from app.fhir.search.normalize import MAX_TIME, date_range, normalize_string
from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr

FNR = synthetic_fnr(13, 9, 1972, 101)
UCUM = "http://unitsofmeasure.org"


@cache
def registry() -> Registry:
    return Registry.standard()


def rtype(name: str) -> ResourceType:
    return registry().types[name]


def rows_of(res_type: str, resource: dict[str, Any]) -> IndexRows:
    return index_rows(rtype(res_type), {"resourceType": res_type, **resource})


def by_param(rows: list[dict[str, Any]], param: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["param"] == param]


def test_string_rows_are_normalised_and_keep_the_exact_value() -> None:
    rows = rows_of("Patient", {"name": [{"family": "Ås", "given": ["Åse", "Áilu"]}]})
    family = by_param(rows.string, "family")
    assert [(r["value_norm"], r["value_exact"]) for r in family] == [(normalize_string("ås"), "Ås")]
    assert family[0]["hash_identity"] == identity_hash("Patient", "family") == hash64("Patient", "family")
    assert "hash_exact" not in family[0]  # :exact finds value_norm, then compares value_exact
    assert sorted(r["value_norm"] for r in by_param(rows.string, "given")) == [
        "ailu",
        normalize_string("åse"),
    ]
    expected_names = ["ailu", normalize_string("ås"), normalize_string("åse")]
    assert sorted(r["value_norm"] for r in by_param(rows.string, "name")) == expected_names


def test_token_rows_and_their_hashes() -> None:
    rows = rows_of(
        "Patient", {"identifier": [{"system": FNR_SYSTEM, "value": FNR}], "gender": "female", "active": True}
    )
    (identifier,) = by_param(rows.token, "identifier")
    assert (identifier["system"], identifier["code"]) == (FNR_SYSTEM, FNR)
    assert identifier["hash_value"] == hash64("Patient", "identifier", FNR)
    assert identifier["hash_sys_value"] == hash64("Patient", "identifier", FNR_SYSTEM, FNR)
    assert identifier["hash_sys"] == hash64("Patient", "identifier", FNR_SYSTEM)
    (gender,) = by_param(rows.token, "gender")
    assert (gender["system"], gender["code"]) == (None, "female")
    assert gender["hash_sys_value"] == hash64("Patient", "gender", "", "female")  # what |female looks up
    (active,) = by_param(rows.token, "active")
    assert active["code"] == "true"


def test_codeable_concept_rows_and_text() -> None:
    concept = {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "44054006", "display": "Type 2 diabetes mellitus"},
            {"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"},
        ],
        "text": "Sukkersyke",
    }
    rows = rows_of("Condition", {"subject": {"reference": "Patient/p"}, "code": concept})
    assert sorted((r["system"], r["code"]) for r in by_param(rows.token, "code")) == [
        ("http://hl7.org/fhir/sid/icd-10", "E11"),
        ("http://snomed.info/sct", "44054006"),
    ]
    assert sorted(r["value_norm"] for r in by_param(rows.string, "code:text")) == [
        "sukkersyke",
        "type 2 diabetes mellitus",
    ]


def test_identifier_type_rows_for_of_type_and_text() -> None:
    identifier = {
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
            "text": "Journal",
        },
        "system": "urn:journal",
        "value": "J-1",
    }
    rows = rows_of("Patient", {"identifier": [identifier]})
    (of_type,) = by_param(rows.token, "identifier:of-type")
    assert of_type["hash_sys_value"] == hash64(
        "Patient", "identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203", "MR|J-1"
    )
    assert [r["value_norm"] for r in by_param(rows.string, "identifier:text")] == ["journal"]


def test_contact_points_index_their_value() -> None:
    rows = rows_of(
        "Patient",
        {"telecom": [{"system": "phone", "value": "+4791234567"}, {"system": "email", "value": "k@x.no"}]},
    )
    assert [r["code"] for r in by_param(rows.token, "phone")] == ["+4791234567"]
    assert [r["code"] for r in by_param(rows.token, "email")] == ["k@x.no"]
    assert sorted(r["code"] for r in by_param(rows.token, "telecom")) == ["+4791234567", "k@x.no"]


def test_date_rows() -> None:
    rows = rows_of(
        "Encounter",
        {"status": "finished", "class": {"code": "AMB"}, "period": {"start": "2021-01-01T08:00:00+01:00"}},
    )
    (period,) = by_param(rows.date, "date")
    assert period["low"] == (date_range("2021-01-01T07:00:00Z") or (0, 0))[0]
    assert period["high"] == MAX_TIME  # open end
    rows = rows_of("Patient", {"birthDate": "1972-09"})
    (birth,) = by_param(rows.date, "birthdate")
    assert (birth["low"], birth["high"]) == date_range("1972-09")


def test_quantity_rows_also_key_the_human_unit() -> None:
    rows = rows_of(
        "Observation",
        {
            "status": "final",
            "code": {"text": "x"},
            "valueQuantity": {"value": 100, "unit": "milligram", "system": UCUM, "code": "mg"},
        },
    )
    quantities = by_param(rows.quantity, "value-quantity")
    assert {r["hash_code"] for r in quantities} == {
        hash64("Observation", "value-quantity", "mg"),
        hash64("Observation", "value-quantity", "milligram"),
    }
    assert hash64("Observation", "value-quantity", UCUM, "mg") in {r["hash_sys_code"] for r in quantities}
    assert hash64("Observation", "value-quantity", UCUM, "milligram") not in {
        r["hash_sys_code"] for r in quantities
    }
    assert {r["value"] for r in quantities} == {100.0}


def test_quantity_with_the_same_code_and_unit_has_one_row() -> None:
    rows = rows_of(
        "Observation",
        {
            "status": "final",
            "code": {"text": "x"},
            "valueQuantity": {"value": 5.4, "unit": "mg", "system": UCUM, "code": "mg"},
        },
    )
    assert len(by_param(rows.quantity, "value-quantity")) == 1


def test_number_rows() -> None:
    rows = rows_of(
        "RiskAssessment",
        {
            "status": "final",
            "subject": {"reference": "Patient/p"},
            "prediction": [{"probabilityDecimal": 0.25}],
        },
    )
    assert [r["value"] for r in by_param(rows.number, "probability")] == [0.25]


def test_reference_rows() -> None:
    rows = rows_of(
        "Observation",
        {"status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/p1/_history/3"}},
    )
    (subject,) = by_param(rows.reference, "subject")
    assert (subject["target_type"], subject["target_id"], subject["url"]) == ("Patient", "p1", None)
    assert subject["hash_target"] == hash64("Observation", "subject", "Patient/p1")
    assert subject["hash_target_id"] == hash64("Observation", "subject", "p1")
    (patient,) = by_param(rows.reference, "patient")  # subject.where(resolve() is Patient)
    assert patient["target_id"] == "p1"


def test_reference_with_only_an_identifier_is_present_without_a_target() -> None:
    rows = rows_of(
        "Observation",
        {
            "status": "final",
            "code": {"text": "x"},
            "subject": {"identifier": {"system": FNR_SYSTEM, "value": FNR}},
        },
    )
    (subject,) = by_param(rows.reference, "subject")
    assert (subject["target_type"], subject["target_id"], subject["url"]) == (None, None, None)
    (identifier,) = by_param(rows.token, "subject:identifier")
    assert identifier["hash_sys_value"] == hash64("Observation", "subject:identifier", FNR_SYSTEM, FNR)


def test_uri_rows() -> None:
    rows = rows_of("ValueSet", {"status": "active", "url": "http://example.org/vs"})
    assert [r["value"] for r in by_param(rows.uri, "url")] == ["http://example.org/vs"]
    rows = rows_of("Patient", {"meta": {"profile": ["http://example.org/StructureDefinition/p"]}})
    assert [r["value"] for r in by_param(rows.uri, "_profile")] == [
        "http://example.org/StructureDefinition/p"
    ]


def test_repeated_values_are_indexed_once() -> None:
    rows = rows_of(
        "Patient",
        {"name": [{"family": "Berg"}, {"family": "Berg"}], "identifier": [{"value": "1"}, {"value": "1"}]},
    )
    assert len(by_param(rows.string, "family")) == 1
    assert len(by_param(rows.token, "identifier")) == 1


def test_nothing_is_indexed_for_engine_parameters() -> None:
    rows = rows_of("Patient", {"id": "x", "meta": {"lastUpdated": "2021-01-01T00:00:00Z"}})
    every = [r for table in rows.tables().values() for r in table]
    assert not [r for r in every if r["param"] in ("_id", "_lastUpdated")]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/1", ("Patient", "1", None)),
        ("Patient/1/_history/2", ("Patient", "1", None)),
        ("http://fhir.test/Patient/1", ("Patient", "1", "http://fhir.test/Patient/1")),
        (
            "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
            (None, None, "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"),
        ),
        ("#contained", (None, None, "#contained")),
        ("p1", (None, None, "p1")),
    ],
)
def test_split_reference(reference: str, expected: tuple[str | None, str | None, str | None]) -> None:
    assert split_reference(reference) == expected


def test_concept_with_only_text_gets_a_row_without_system_and_code() -> None:
    rows = rows_of("Condition", {"subject": {"reference": "Patient/p"}, "code": {"text": "Sukkersyke"}})
    (presence,) = by_param(rows.token, "code")
    assert (presence["system"], presence["code"]) == (None, None)
    assert [r["value_norm"] for r in by_param(rows.string, "code:text")] == ["sukkersyke"]
    coded = rows_of(
        "Condition",
        {"subject": {"reference": "Patient/p"}, "code": {"coding": [{"code": "E11"}], "text": "x"}},
    )
    assert [r["code"] for r in by_param(coded.token, "code")] == ["E11"]  # no extra row when coded


def test_a_concept_met_twice_is_still_coded() -> None:
    """`Observation.dataAbsentReason | Observation.component.dataAbsentReason` with the same concept in
    both: the second adds no rows, and must not add a row without system and code either."""
    reason = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "x"}]}
    rows = rows_of(
        "Observation",
        {
            "status": "cancelled",
            "code": {"text": "x"},
            "dataAbsentReason": reason,
            "component": [{"code": {"text": "y"}, "dataAbsentReason": reason}],
        },
    )
    assert [r["code"] for r in by_param(rows.token, "combo-data-absent-reason")] == ["x"]


def test_value_rows_index_given_elements_as_index_rows_does() -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Ås", "given": ["Åse"]}], "gender": "female"}
    rows = index_rows(rtype("Patient"), patient)
    for code, elements in (("name", patient["name"]), ("gender", ["female"])):
        param = rtype("Patient").search_params[code]
        found = value_rows("Patient", param, elements)
        assert found.string + found.token == by_param(rows.string + rows.token, code)
