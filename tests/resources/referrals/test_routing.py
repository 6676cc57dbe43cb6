"""Common referral intake: rules as data, first match wins, a default, and rule-set validation."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from app.resources.no_basis.search import MUNICIPALITY_EXTENSION
from app.resources.referrals.codes import FORWARDING_EXTENSION, ICD10_SYSTEM, ICPC2_SYSTEM, Output
from app.resources.referrals.routing import (
    ReferralFacts,
    RuleSetError,
    age_on,
    facts_from,
    load_rule_set,
    record_routing,
    route,
    validate_rule_set,
)
from app.resources.referrals.taskjson import business_status, output
from app.resources.referrals.workflow import IllegalTransition, InvalidInput
from tests.resources.referrals.builders import completed, day, new_task, received

SPECIALTY = "urn:oid:2.16.578.1.12.4.1.1.8451"
INTAKE = "Organization/intake"

RULES: dict[str, Any] = {
    "id": "intake-test",
    "default": {"reference": INTAKE, "display": "Felles henvisningsmottak"},
    "rules": [
        {
            "id": "bup-bergen",
            "description": "Children's mental health from Bergen",
            "when": {
                "municipality": ["4601"],
                "age": {"max": 17},
                "diagnosis": {"icd10": ["F"], "icpc2": ["P"]},
            },
            "target": {"reference": "Organization/bup-bergen", "display": "BUP Bergen"},
        },
        {
            "id": "dps-bergen",
            "when": {
                "municipality": ["4601", "4627"],
                "age": {"min": 18},
                "diagnosis": {"icd10": ["F2", "F3"]},
            },
            "target": {"reference": "Organization/dps-bergen"},
        },
        {
            "id": "ortho-by-service",
            "when": {"service": [f"{SPECIALTY}|140"], "intake": [INTAKE]},
            "target": {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": "974557746"}},
        },
        {
            "id": "any-mental-health",  # overlaps the first two; they come first and win
            "when": {"diagnosis": {"icd10": ["F"]}},
            "target": {"reference": "Organization/psych-region"},
        },
    ],
}


@pytest.fixture
def rules() -> Any:
    return load_rule_set(RULES)


@pytest.mark.parametrize(
    ("facts", "rule_id", "target"),
    [
        (ReferralFacts("4601", 12, ((ICD10_SYSTEM, "F90.0"),)), "bup-bergen", "Organization/bup-bergen"),
        (ReferralFacts("4601", 12, ((ICPC2_SYSTEM, "P81"),)), "bup-bergen", "Organization/bup-bergen"),
        (ReferralFacts("4601", 17, ((ICD10_SYSTEM, "f32.1"),)), "bup-bergen", "Organization/bup-bergen"),
        (ReferralFacts("4627", 40, ((ICD10_SYSTEM, "F32.1"),)), "dps-bergen", "Organization/dps-bergen"),
        (ReferralFacts("4601", 18, ((ICD10_SYSTEM, "F20"),)), "dps-bergen", "Organization/dps-bergen"),
        # F40 is not F2/F3: falls through to the regional rule
        (
            ReferralFacts("4601", 40, ((ICD10_SYSTEM, "F40.1"),)),
            "any-mental-health",
            "Organization/psych-region",
        ),
        # a child outside Bergen
        (
            ReferralFacts("0301", 12, ((ICD10_SYSTEM, "F90"),)),
            "any-mental-health",
            "Organization/psych-region",
        ),
        # unknown age: an age condition does not hold
        (
            ReferralFacts("4601", None, ((ICD10_SYSTEM, "F90"),)),
            "any-mental-health",
            "Organization/psych-region",
        ),
        # ICPC-2 P codes only count in the rule that names icpc2
        (ReferralFacts("0301", 40, ((ICPC2_SYSTEM, "P76"),)), None, INTAKE),
        (ReferralFacts(services=((SPECIALTY, "140"),), intake=INTAKE), "ortho-by-service", None),
        (ReferralFacts(services=((SPECIALTY, "140"),), intake="Organization/other"), None, INTAKE),
        (ReferralFacts(), None, INTAKE),
    ],
)
def test_route(rules: Any, facts: ReferralFacts, rule_id: str | None, target: str | None) -> None:
    decision = route(rules, facts)
    assert decision.rule_id == rule_id
    assert decision.used_default is (rule_id is None)
    if target is not None:
        assert decision.target["reference"] == target
    else:
        assert decision.target["identifier"]["value"] == "974557746"


def test_bare_service_code_matches_any_system() -> None:
    rules = load_rule_set(
        {
            "default": {"reference": INTAKE},
            "rules": [{"id": "r", "when": {"service": ["140"]}, "target": {"reference": "Organization/x"}}],
        }
    )
    assert route(rules, ReferralFacts(services=(("urn:other", "140"),))).rule_id == "r"


def test_load_copies_the_rule_set() -> None:
    data = copy.deepcopy(RULES)
    rules = load_rule_set(data)
    data["rules"].clear()
    assert route(rules, ReferralFacts("4601", 12, ((ICD10_SYSTEM, "F90"),))).rule_id == "bup-bergen"


def _with(rule_changes: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    data = copy.deepcopy(RULES)
    if rule_changes is not None:
        data["rules"][0] = {**data["rules"][0], **rule_changes}
    data.update(top)
    return data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "must be a JSON object"),
        ({"rules": []}, "default: a default target is required"),
        (_with(default={"display": "no ref"}), "default: a Reference"),
        (_with(rules={}), "rules: must be a list"),
        (_with(extra=1), "extra: unknown key"),
        (_with({"id": ""}), "rules[0].id"),
        (_with({"id": "dps-bergen"}), "'dps-bergen' is used by an earlier rule"),
        (_with({"when": {}}), "at least one condition"),
        (_with({"when": {"municipalty": ["4601"]}}), "municipalty: unknown condition"),
        (_with({"when": {"municipality": ["461"]}}), "not a four-digit kommunenummer"),
        (_with({"when": {"municipality": []}}), "non-empty list"),
        (_with({"when": {"age": {"min": 18, "max": 17}}}), "min 18 is above max 17"),
        (_with({"when": {"age": {"min": -1}}}), "whole years"),
        (_with({"when": {"age": {"min": True}}}), "whole years"),
        (_with({"when": {"age": {"from": 3}}}), "'min' and/or 'max'"),
        (_with({"when": {"diagnosis": {"icd11": ["F"]}}}), "neither a known alias"),
        (_with({"when": {"diagnosis": {"icd10": [""]}}}), "non-empty strings"),
        (_with({"when": {"diagnosis": []}}), "system (alias or URI)"),
        (_with({"target": {}}), "target: a Reference"),
        (_with({"priority": 1}), "priority: unknown key"),
        (_with(rules=["x"]), "must be an object"),
    ],
)
def test_invalid_rule_sets(data: Any, problem: str) -> None:
    problems = validate_rule_set(data)
    assert any(problem in p for p in problems), problems
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(data)
    assert caught.value.problems == problems


def test_all_problems_are_reported_at_once() -> None:
    data = _with({"id": "dps-bergen", "when": {"municipality": ["x"]}, "target": {}})
    assert len(validate_rule_set(data)) == 3
    assert validate_rule_set(RULES) == []


def test_facts_from_fhir_resources() -> None:
    patient = {
        "resourceType": "Patient",
        "birthDate": "2013-06-15",
        "address": [
            {
                "use": "temp",
                "_district": {
                    "extension": [{"url": MUNICIPALITY_EXTENSION, "valueCoding": {"code": "0301"}}]
                },
            },
            {
                "use": "home",
                "_district": {
                    "extension": [{"url": MUNICIPALITY_EXTENSION, "valueCoding": {"code": "4601"}}]
                },
            },
        ],
    }
    service_request = {
        "resourceType": "ServiceRequest",
        "reasonCode": [{"coding": [{"system": ICD10_SYSTEM, "code": "F90.0"}]}],
        "code": {"coding": [{"system": SPECIALTY, "code": "120"}]},
        "performer": [{"reference": INTAKE}],
    }
    facts = facts_from(service_request, patient, on=date(2025, 6, 14))
    assert facts == ReferralFacts(
        municipality="4601",
        age=11,
        diagnoses=((ICD10_SYSTEM, "F90.0"),),
        services=((SPECIALTY, "120"),),
        intake=INTAKE,
    )
    assert facts_from(service_request, patient, on=date(2025, 6, 15)).age == 12
    assert (
        facts_from(service_request, None, on=date(2025, 6, 15), intake="Organization/x").intake
        == "Organization/x"
    )
    assert facts_from({}, {"birthDate": "2010"}, on=date(2025, 6, 15)).age == 15


def test_age_on_leap_day() -> None:
    assert age_on(date(2012, 2, 29), date(2030, 2, 28)) == 17
    assert age_on(date(2012, 2, 29), date(2030, 3, 1)) == 18


def test_record_routing_before_and_after_receipt(rules: Any) -> None:
    decision = route(rules, ReferralFacts("4601", 12, ((ICD10_SYSTEM, "F90"),)))
    routed = record_routing(new_task(), decision, at=day(0))
    assert routed["status"] == "requested"
    assert routed["owner"]["reference"] == "Organization/bup-bergen"
    assert output(routed, Output.ROUTING_RULE) == "bup-bergen"
    forwarded = record_routing(received(), decision, at=day(1))
    assert forwarded["status"] == "requested"
    assert business_status(forwarded) == "videresendt"
    assert output(forwarded, Output.ROUTING_RULE) == "bup-bergen"
    assert any(e["url"] == FORWARDING_EXTENSION for e in forwarded["extension"])
    default = record_routing(new_task(), route(rules, ReferralFacts()), at=day(0))
    assert output(default, Output.ROUTING_RULE) == "default"
    with pytest.raises(IllegalTransition):
        record_routing(completed(), decision, at=day(50))
    with pytest.raises(InvalidInput):
        record_routing(new_task(), decision, at=day(0).replace(tzinfo=None))
