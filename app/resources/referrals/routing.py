"""Common referral intake (felles henvisningsmottak): which unit a referral goes to, decided by data.

A rule set is a JSON object (a settings file, or the content of a FHIR Basic/Binary resource):

    {
      "id": "intake-helse-vest",
      "default": {"reference": "Organization/intake", "display": "Felles henvisningsmottak"},
      "rules": [
        {
          "id": "bup-bergen",
          "description": "Children's mental health, Bergen and Askøy",
          "when": {
            "intake": ["Organization/intake"],
            "municipality": ["4601", "4627"],
            "age": {"min": 0, "max": 17},
            "diagnosis": {"icd10": ["F"], "icpc2": ["P"]},
            "service": ["urn:oid:2.16.578.1.12.4.1.1.8451|120"]
          },
          "target": {"reference": "Organization/bup-bergen", "display": "BUP Bergen"}
        }
      ]
    }

Every condition present must hold (AND); within a condition any listed value will do (OR); a condition
whose fact is unknown does not hold. The first matching rule wins; otherwise the default. Age bounds are
inclusive whole years. Diagnosis prefixes compare with upper-case codes without dots (F32 matches F32.1),
keyed by a system alias (icd10, icpc2) or a full system URI. A service is "system|code" or a bare code.
Unknown keys are errors: a misspelt condition would otherwise be silently ignored and widen the rule.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.resources.no_basis.search import MUNICIPALITY_EXTENSION
from app.resources.referrals.codes import ICD10_SYSTEM, ICPC2_SYSTEM, Output, TaskStatus
from app.resources.referrals.taskjson import Reference, Task, instant, is_reference, set_output, status
from app.resources.referrals.workflow import IllegalTransition, InvalidInput, forward

SYSTEM_ALIASES: dict[str, frozenset[str]] = {
    "icd10": frozenset({ICD10_SYSTEM, "http://hl7.org/fhir/sid/icd-10"}),
    "icpc2": frozenset({ICPC2_SYSTEM, "http://hl7.org/fhir/sid/icpc-2"}),
}
_RULE_KEYS = frozenset({"id", "description", "when", "target"})
_WHEN_KEYS = frozenset({"intake", "municipality", "age", "diagnosis", "service"})
_SET_KEYS = frozenset({"id", "description", "version", "rules", "default"})
_MUNICIPALITY = re.compile(r"\d{4}")


class RuleSetError(ValueError):
    """An invalid rule set; `problems` lists every problem found, each naming its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid routing rule set: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ReferralFacts:
    """What the rules look at, taken from the referral (see facts_from)."""

    municipality: str | None = None
    age: int | None = None
    diagnoses: tuple[tuple[str, str], ...] = ()  # (system, code)
    services: tuple[tuple[str, str], ...] = ()  # (system, code)
    intake: str | None = None  # reference of the intake organisation the referral was sent to


@dataclass(frozen=True)
class RoutingDecision:
    target: Reference
    rule_id: str | None  # None: no rule matched, the default applies

    @property
    def used_default(self) -> bool:
        return self.rule_id is None


def _strings(value: Any, where: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where}: a non-empty list of non-empty strings is required")
        return []
    return [str(v) for v in value]


def _check_target(value: Any, where: str, problems: list[str]) -> None:
    if not is_reference(value):
        problems.append(f"{where}: a Reference with 'reference' or 'identifier' is required")


def _check_when(when: Any, where: str, problems: list[str]) -> None:
    if not isinstance(when, dict) or not when:
        problems.append(
            f"{where}: at least one condition is required (a rule matching everything is the default)"
        )
        return
    for key in sorted(set(when) - _WHEN_KEYS):
        problems.append(f"{where}.{key}: unknown condition (known: {', '.join(sorted(_WHEN_KEYS))})")
    for key in ("intake", "service"):
        if key in when:
            _strings(when[key], f"{where}.{key}", problems)
    if "municipality" in when:
        for code in _strings(when["municipality"], f"{where}.municipality", problems):
            if not _MUNICIPALITY.fullmatch(code):
                problems.append(f"{where}.municipality: {code!r} is not a four-digit kommunenummer")
    if "age" in when:
        _check_age(when["age"], f"{where}.age", problems)
    if "diagnosis" in when:
        diagnosis = when["diagnosis"]
        if not isinstance(diagnosis, dict) or not diagnosis:
            problems.append(
                f"{where}.diagnosis: an object of system (alias or URI) -> code prefixes is required"
            )
            return
        for system, prefixes in diagnosis.items():
            if system not in SYSTEM_ALIASES and ":" not in system:
                problems.append(f"{where}.diagnosis.{system}: neither a known alias (icd10, icpc2) nor a URI")
            _strings(prefixes, f"{where}.diagnosis.{system}", problems)


def _check_age(age: Any, where: str, problems: list[str]) -> None:
    if not isinstance(age, dict) or not age or set(age) - {"min", "max"}:
        problems.append(f"{where}: an object with 'min' and/or 'max' is required")
        return
    bounds = [age.get("min"), age.get("max")]
    if any(b is not None and (not isinstance(b, int) or isinstance(b, bool) or b < 0) for b in bounds):
        problems.append(f"{where}: bounds are whole years, zero or more")
    elif bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        problems.append(f"{where}: min {bounds[0]} is above max {bounds[1]}")


def validate_rule_set(rule_set: Any) -> list[str]:
    """Every problem of a rule set (empty when valid)."""
    problems: list[str] = []
    if not isinstance(rule_set, dict):
        return ["the rule set must be a JSON object"]
    for key in sorted(set(rule_set) - _SET_KEYS):
        problems.append(f"{key}: unknown key")
    if "default" not in rule_set:
        problems.append("default: a default target is required")
    else:
        _check_target(rule_set["default"], "default", problems)
    rules = rule_set.get("rules", [])
    if not isinstance(rules, list):
        return [*problems, "rules: must be a list"]
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not isinstance(rule, dict):
            problems.append(f"{where}: must be an object")
            continue
        rule_id = rule.get("id")
        if not isinstance(rule_id, str) or not rule_id.strip():
            problems.append(f"{where}.id: a non-empty string is required")
        elif rule_id in seen:
            problems.append(f"{where}.id: {rule_id!r} is used by an earlier rule")
        else:
            seen.add(rule_id)
            where = f"rules[{index}] ({rule_id})"
        for key in sorted(set(rule) - _RULE_KEYS):
            problems.append(f"{where}.{key}: unknown key")
        _check_when(rule.get("when"), f"{where}.when", problems)
        _check_target(rule.get("target"), f"{where}.target", problems)
    return problems


@dataclass(frozen=True)
class RuleSet:
    """A validated rule set; build it with load_rule_set."""

    data: Mapping[str, Any]

    @property
    def rules(self) -> Sequence[Mapping[str, Any]]:
        rules: Sequence[Mapping[str, Any]] = self.data.get("rules", [])
        return rules

    @property
    def default(self) -> Reference:
        return dict(self.data["default"])


def load_rule_set(data: Any) -> RuleSet:
    """Validate and freeze (a deep copy of) a rule set; raises RuleSetError listing every problem."""
    problems = validate_rule_set(data)
    if problems:
        raise RuleSetError(problems)
    return RuleSet(copy.deepcopy(data))


def _normalise_code(code: str) -> str:
    return code.replace(".", "").replace(" ", "").upper()


def _diagnosis_matches(condition: Mapping[str, list[str]], facts: ReferralFacts) -> bool:
    for key, prefixes in condition.items():
        systems = SYSTEM_ALIASES.get(key, frozenset({key}))
        wanted = tuple(_normalise_code(p) for p in prefixes)
        if any(s in systems and _normalise_code(c).startswith(wanted) for s, c in facts.diagnoses):
            return True
    return False


def _service_matches(condition: list[str], facts: ReferralFacts) -> bool:
    for entry in condition:
        system, _, code = entry.rpartition("|")
        if any(c == code and (not system or s == system) for s, c in facts.services):
            return True
    return False


def _age_matches(condition: Mapping[str, int], age: int | None) -> bool:
    if age is None:
        return False
    return condition.get("min", 0) <= age and ("max" not in condition or age <= condition["max"])


def rule_matches(rule: Mapping[str, Any], facts: ReferralFacts) -> bool:
    when: Mapping[str, Any] = rule["when"]
    checks = {
        "intake": lambda c: facts.intake in c,
        "municipality": lambda c: facts.municipality in c,
        "age": lambda c: _age_matches(c, facts.age),
        "diagnosis": lambda c: _diagnosis_matches(c, facts),
        "service": lambda c: _service_matches(c, facts),
    }
    return all(checks[key](condition) for key, condition in when.items())


def route(rule_set: RuleSet, facts: ReferralFacts) -> RoutingDecision:
    """The first rule whose conditions all hold, else the default."""
    for rule in rule_set.rules:
        if rule_matches(rule, facts):
            return RoutingDecision(dict(rule["target"]), str(rule["id"]))
    return RoutingDecision(rule_set.default, None)


def age_on(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def _municipality(patient: Mapping[str, Any]) -> str | None:
    addresses = [a for a in patient.get("address", []) if isinstance(a, dict)]
    # the home address decides; else the first that carries a kommunenummer
    addresses.sort(key=lambda a: a.get("use") != "home")
    for address in addresses:
        district = address.get("_district")
        for ext in district.get("extension", []) if isinstance(district, dict) else ():
            if ext.get("url") == MUNICIPALITY_EXTENSION:
                value = ext.get("valueCoding", {}).get("code") or ext.get("valueCode")
                if isinstance(value, str):
                    return value
    return None


def _codings(concepts: Any) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        for c in concept.get("coding", []) if isinstance(concept, dict) else ():
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                found.append((str(c.get("system", "")), c["code"]))
    return tuple(found)


def facts_from(
    service_request: Mapping[str, Any], patient: Mapping[str, Any] | None, on: date, intake: str | None = None
) -> ReferralFacts:
    """Facts from a referral: municipality and age from the Patient, diagnoses from
    ServiceRequest.reasonCode, services from ServiceRequest.code and performerType, and the intake from
    the first ServiceRequest.performer unless given."""
    birth = patient.get("birthDate") if patient else None
    age = None
    if isinstance(birth, str) and len(birth) >= 4:
        # a partial birthDate (year or year-month) counts from its first day; good enough for age bands
        parts = (birth + "-01-01")[:10] if len(birth) < 10 else birth
        try:
            age = age_on(date.fromisoformat(parts), on)
        except ValueError:
            age = None
    if intake is None:
        performers = service_request.get("performer") or [{}]
        first = performers[0] if isinstance(performers[0], dict) else {}
        intake = first.get("reference") if isinstance(first.get("reference"), str) else None
    return ReferralFacts(
        municipality=_municipality(patient) if patient else None,
        age=age,
        diagnoses=_codings(service_request.get("reasonCode", [])),
        services=_codings(service_request.get("code")) + _codings(service_request.get("performerType")),
        intake=intake,
    )


def record_routing(task: Task, decision: RoutingDecision, *, at: datetime) -> Task:
    """Apply a routing decision to a referral Task and record the rule that chose the owner.

    Before receipt (requested) the owner is set directly; after receipt by the intake (received) the
    referral is forwarded, which keeps who forwarded it and when.
    """
    if at.tzinfo is None:
        raise InvalidInput("at: a timezone-aware datetime is required")
    rule = decision.rule_id or "default"
    if status(task) == TaskStatus.RECEIVED:
        return forward(task, to=decision.target, at=at, reason=f"Rutingregel {rule}", routing_rule=rule)
    if status(task) != TaskStatus.REQUESTED:
        raise IllegalTransition(f"routing: not allowed when Task.status is '{status(task)}'")
    new = copy.deepcopy(task)
    new["owner"] = dict(decision.target)
    set_output(new, Output.ROUTING_RULE, "String", rule)
    new["lastModified"] = instant(at)
    return new
