"""The row filter specialised to the types a statement's rows can have: the checks that cannot apply to
those types are left out of the SQL (PostgreSQL plans every branch), the others stay. That the rows
filtered stay the same is tested through the API (test_access_policy: reservations hide core journal
content in searches; Observations stay visible)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql

from app.resources.core_journal import CORE_JOURNAL_TYPES
from app.security.policy import Policy, PolicyConfig
from app.security.principal import Principal
from app.security.scopes import parse_scopes
from app.store.tables import resource

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SUBJECT = resource.alias("subject")


def _sql(policy: Policy, types: frozenset[str] | None) -> str:
    """The filter's SQL with the constants it compares with (fact kinds, types), which are parameters."""
    compiled = policy.condition(SUBJECT, types).compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    constants = " ".join(str(v) for v in compiled.params.values() if isinstance(v, str))
    return f"{compiled} {constants}"


def _policy(**claims: str) -> Policy:
    kind = claims.pop("kind")
    principal = Principal(
        kind=kind,  # type: ignore[arg-type]
        subject="s",
        client_id="c",
        issuer="i",
        scopes=parse_scopes(claims.pop("scopes")),
        **claims,  # type: ignore[arg-type]
    )
    return Policy(PolicyConfig.standard(CORE_JOURNAL_TYPES), principal, NOW)


def test_a_system_search_of_observations_needs_no_reservation_check() -> None:
    system = _policy(kind="system", scopes="system/*.rs")
    assert "reservation" in _sql(system, None)
    assert "reservation" in _sql(system, frozenset({"Condition"}))
    assert "reservation" in _sql(system, frozenset({"Observation", "AllergyIntolerance"}))
    observations = _sql(system, frozenset({"Observation"}))
    assert "reservation" not in observations
    # consent blocks name single resources of any type: the check stays (for a system, which is no
    # party a block can name, it is a check that can never match)
    assert "sec_access_fact" in observations


def test_personnel_keep_the_care_relation_check_for_patient_data_only() -> None:
    gp = _policy(kind="personnel", scopes="user/*.rs", hpr="565505933", orgnr="987654321")
    observations = _sql(gp, frozenset({"Observation"}))
    assert "care" in observations  # patient data: the care relation decides
    assert "AuditEvent" not in observations  # only a statement that can return AuditEvents excludes them
    assert "AuditEvent" in _sql(gp, None)
    # Rows of a type that is not patient data need neither check
    organisations = _sql(gp, frozenset({"Organization"}))
    assert "care" not in organisations
    assert "reservation" not in organisations
    # the filter of a set of types is made once and reused
    made = gp.templates.conditions[(frozenset({"Observation"}), False)]
    _sql(gp, frozenset({"Observation"}))
    assert gp.templates.conditions[(frozenset({"Observation"}), False)] is made
