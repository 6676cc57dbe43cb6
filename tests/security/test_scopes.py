"""SMART scopes: v2 and v1 forms are granted; anything we cannot enforce exactly grants nothing."""

from __future__ import annotations

import pytest

from app.security.principal import Scope
from app.security.scopes import parse_scopes, restrict_contexts

KNOWN = frozenset({"Patient", "Observation", "Encounter"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient/Observation.rs", Scope("patient", "Observation", frozenset("rs"))),
        ("user/*.cruds", Scope("user", "*", frozenset("cruds"))),
        ("system/Patient.r", Scope("system", "Patient", frozenset("r"))),
        ("user/Patient.cd", Scope("user", "Patient", frozenset("cd"))),
        # v1 forms
        ("patient/Observation.read", Scope("patient", "Observation", frozenset("rs"))),
        ("user/Encounter.write", Scope("user", "Encounter", frozenset("cud"))),
        ("system/*.*", Scope("system", "*", frozenset("cruds"))),
    ],
)
def test_granted_scopes(text: str, expected: Scope) -> None:
    parsed = parse_scopes(text, KNOWN)
    assert parsed.scopes == (expected,)
    assert parsed.raw == (text,)


@pytest.mark.parametrize(
    "text",
    [
        "user/Patient.sr",  # out of c-r-u-d-s order
        "user/Patient.rr",  # a letter twice
        "user/Patient.rsx",  # unknown letter
        "user/Patient.",  # no permissions
        "user/Patient.readwrite",
        "user/Patient.Read",
        "admin/Patient.r",  # unknown context
        "user/patient.r",  # resource types start with a capital
        "user/Foo.r",  # not a known type
        "user/Patient",
        "patient/Observation.rs?category=laboratory",  # v2 query constraint: not enforced, so refused
        "patient/*.rs?_tag=x",
    ],
)
def test_refused_scopes_grant_nothing_but_are_recorded(text: str) -> None:
    parsed = parse_scopes(text, KNOWN)
    assert parsed.scopes == ()
    assert parsed.raw == (text,)


def test_non_fhir_scopes_are_kept_in_raw_only() -> None:
    text = "openid profile launch launch/patient fhirUser offline_access helseid://scopes/identity/pid"
    parsed = parse_scopes(text, KNOWN)
    assert parsed.scopes == ()
    assert parsed.raw == tuple(text.split())


def test_mixed_list_merges_duplicates_and_keeps_order() -> None:
    parsed = parse_scopes(
        ["openid user/Patient.r", "user/Patient.s", "user/Patient.r", "patient/Observation.rs?code=x"],
        KNOWN,
    )
    assert parsed.scopes == (Scope("user", "Patient", frozenset("rs")),)
    assert parsed.raw == ("openid", "user/Patient.r", "user/Patient.s", "patient/Observation.rs?code=x")
    assert parsed.allows("Patient", "s")
    assert not parsed.allows("Patient", "c")
    assert not parsed.allows("Observation", "r")


def test_without_known_types_any_capitalised_type_is_granted() -> None:
    assert parse_scopes("user/Anything.r").allows("Anything", "r")
    assert parse_scopes("user/Foo.r", KNOWN).scopes == ()


def test_wildcard_and_type_queries() -> None:
    parsed = parse_scopes("user/*.rs system/Patient.c", KNOWN)
    assert parsed.allows("Encounter", "r")
    assert parsed.types_with("r") is None
    assert parsed.types_with("c") == frozenset({"Patient"})
    assert parsed.contexts == frozenset({"user", "system"})


def test_restrict_contexts_keeps_the_raw_record() -> None:
    parsed = parse_scopes("user/*.rs system/*.cruds openid", KNOWN)
    restricted = restrict_contexts(parsed, ("user", "patient"))
    assert restricted.scopes == (Scope("user", "*", frozenset("rs")),)
    assert restricted.raw == parsed.raw


def test_empty_scope_text() -> None:
    assert parse_scopes("", KNOWN).scopes == ()
    assert parse_scopes([], KNOWN).raw == ()
