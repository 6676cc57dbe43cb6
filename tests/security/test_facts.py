"""Access facts derived from resources (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.security.facts import (
    BLOCK,
    CONSENT_CATEGORY_SYSTEM,
    PROXY,
    RESERVATION,
    Fact,
    derive,
    local_ref,
    parse_instant,
    twelfth_birthday_cutoff,
)

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def facts(resource: dict[str, Any], base: str = "") -> list[Fact]:
    return derive(resource["resourceType"], resource.get("id", "x"), resource, NOW, 30, base).facts


@pytest.mark.parametrize(
    ("reference", "base", "expected"),
    [
        ({"reference": "Patient/1"}, "", ("Patient", "1")),
        ({"reference": "Patient/1/_history/2"}, "", ("Patient", "1")),
        ({"reference": "http://fhir.test/Patient/1"}, "http://fhir.test", ("Patient", "1")),
        ({"reference": "http://elsewhere.example/Patient/1"}, "http://fhir.test", None),
        ({"reference": "urn:uuid:0b4a"}, "", None),
        ({"reference": "#contained"}, "", None),
        ({"display": "no reference"}, "", None),
    ],
)
def test_local_references(reference: dict[str, str], base: str, expected: tuple[str, str] | None) -> None:
    assert local_ref(reference, base) == expected


def test_encounter_statuses() -> None:
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "subject": {"reference": "Patient/p"},
        "serviceProvider": {"reference": "Organization/o"},
        "participant": [
            {"individual": {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": "123"}}}
        ],
    }
    active = facts({**encounter, "status": "in-progress"})
    assert {(f.kind, f.patient_id, f.party, f.valid_until) for f in active} == {
        ("care", "p", "ref:Organization/o", None),
        ("care", "p", "hpr:123", None),
    }
    finished = facts({**encounter, "status": "finished", "period": {"end": "2026-11-01"}})
    assert {f.valid_until for f in finished} == {datetime(2026, 12, 1, tzinfo=UTC)}
    assert facts({**encounter, "status": "cancelled"}) == []
    assert facts({**encounter, "status": "entered-in-error"}) == []


def test_patient_identities_and_regular_gp() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "identifier": [
            {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "01010112345"},
            {"system": "urn:oid:2.16.578.1.12.4.1.4.2", "value": "41010112345"},
            {"system": "http://example.org/mrn", "value": "77"},
        ],
        "generalPractitioner": [{"reference": "PractitionerRole/r"}],
    }
    derived = derive("Patient", "p", patient, NOW, 30)
    assert derived.identities == ["pid:01010112345", "pid:41010112345"]
    assert [(f.kind, f.party) for f in derived.facts] == [("care", "ref:PractitionerRole/r")]


def test_practitioner_role_stands_for_its_practitioner_and_organisation() -> None:
    role = {
        "resourceType": "PractitionerRole",
        "practitioner": {"reference": "Practitioner/d"},
        "organization": {"reference": "Organization/o"},
    }
    assert derive("PractitionerRole", "r", role, NOW, 30).identities == [
        "ref:Practitioner/d",
        "ref:Organization/o",
    ]
    assert derive("PractitionerRole", "r", {**role, "active": False}, NOW, 30).identities == []


def _consent(code: str, **provision: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "patient": {"reference": "Patient/p"},
        "category": [{"coding": [{"system": CONSENT_CATEGORY_SYSTEM, "code": code}]}],
        "provision": provision,
    }


def test_consents() -> None:
    assert [(f.kind, f.patient_id) for f in facts(_consent(RESERVATION))] == [("reservation", "p")]
    block = _consent(
        BLOCK,
        actor=[{"reference": {"reference": "Organization/o"}}],
        data=[
            {"reference": {"reference": "DocumentReference/d"}},
            {"reference": {"reference": "Observation/x"}},
        ],
    )
    assert {(f.kind, f.party, f.target) for f in facts(block)} == {
        ("block", "ref:Organization/o", ("DocumentReference", "d")),
        ("block", "ref:Organization/o", ("Observation", "x")),
    }
    proxy = _consent(
        PROXY,
        period={"start": "2026-01-01", "end": "2027-01-01"},
        actor=[{"reference": {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "1"}}}],
    )
    (fact,) = facts(proxy)
    assert (fact.kind, fact.party, fact.valid_from, fact.valid_until) == (
        "proxy",
        "pid:1",
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert facts({**proxy, "status": "inactive"}) == []
    other_system = _consent(RESERVATION)
    other_system["category"][0]["coding"][0]["system"] = "http://example.org"
    assert facts(other_system) == []


def test_parents_from_related_person() -> None:
    mother = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": "Patient/child"},
        "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "2"}],
        "relationship": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}
        ],
    }
    assert {(f.kind, f.party) for f in facts({**mother, "id": "m"})} == {
        ("parent", "pid:2"),
        ("parent", "ref:RelatedPerson/m"),
    }
    neighbour = {**mother, "relationship": [{"coding": [{"code": "NBOR"}]}]}
    assert facts(neighbour) == []


@pytest.mark.parametrize(
    ("today", "cutoff"),
    [
        (date(2026, 11, 22), date(2014, 11, 22)),
        (date(2028, 2, 29), date(2016, 2, 29)),
        (date(2025, 2, 28), date(2013, 2, 28)),
    ],
)
def test_twelfth_birthday_cutoff(today: date, cutoff: date) -> None:
    assert twelfth_birthday_cutoff(today) == cutoff


def test_parse_instant() -> None:
    assert parse_instant("2026") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_instant("2026-03") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_instant("2026-03-04T10:00:00+01:00") == datetime(2026, 3, 4, 9, tzinfo=UTC)
    assert parse_instant("garbage") is None
    assert parse_instant(None) is None
