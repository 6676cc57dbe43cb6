"""The before_write hook: normalise Norwegian identifier systems to their OIDs, then check the values.

It runs before the engine computes the stored bytes and the index rows of a write, so both hold the
normalised system. A failing value refuses the whole write (a transaction: the whole transaction) with
422 and an OperationOutcome that names the identifier and its system, never the value: messages may be
logged, and identifier values are patient data.
"""

from __future__ import annotations

from typing import Any

from app.fhir.hooks import WriteEvent
from app.fhir.outcome import Category, FhirError, Issue
from app.resources.no_basis.identifiers import HNR_TYPE_CODE, ID_TYPE_SYSTEM
from app.resources.no_basis.naming import ALIASES, BY_SYSTEM
from app.resources.no_basis.personal import H_NUMMER, personal_number_problem
from app.resources.no_basis.walk import identifier_sites

_MAX_ISSUES = 50


def normalise_system(identifier: dict[str, Any]) -> None:
    system = identifier.get("system")
    if isinstance(system, str) and system in ALIASES:
        identifier["system"] = ALIASES[system]


def is_h_nummer(identifier: dict[str, Any]) -> bool:
    id_type = identifier.get("type")
    codings = id_type.get("coding") if isinstance(id_type, dict) else None
    return any(
        isinstance(c, dict) and c.get("system") == ID_TYPE_SYSTEM and c.get("code") == HNR_TYPE_CODE
        for c in codings or ()
    )


def identifier_issues(path: str, identifier: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    system, value = identifier.get("system"), identifier.get("value")
    known = BY_SYSTEM.get(system) if isinstance(system, str) else None
    if known is not None and isinstance(value, str):
        problem = known.check(value)
        if problem:
            message = f"{path}: {known.label} ({known.system}) {problem}"
            issues.append(Issue(message, "value", (f"{path}.value",)))
    if is_h_nummer(identifier):
        if isinstance(value, str) and (problem := personal_number_problem(value, H_NUMMER)):
            issues.append(Issue(f"{path}: H-nummer {problem}", "value", (f"{path}.value",)))
        if not identifier.get("assigner"):
            # no-basis-Patient: a local H-nummer is only unique together with the organisation that issued it
            message = f"{path}: an H-nummer requires an assigner (the organisation that issued it)"
            issues.append(Issue(message, "required", (f"{path}.assigner",)))
    return issues


def check_identifiers(resource: dict[str, Any]) -> list[Issue]:
    """Normalise every identifier's system in place and return the problems of their values."""
    issues: list[Issue] = []
    for path, identifier in identifier_sites(resource):
        normalise_system(identifier)
        issues.extend(identifier_issues(path, identifier))
    return issues[:_MAX_ISSUES]


async def no_basis_identifiers(event: WriteEvent) -> None:
    if event.resource is None:  # delete
        return
    issues = check_identifiers(event.resource)
    if issues:
        first, *rest = issues
        raise FhirError(Category.UNPROCESSABLE, first.diagnostics, first.code, first.expression, rest)
