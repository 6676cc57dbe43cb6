"""Referential integrity on write: a local reference must name a resource that exists (HAPI's default).

Every `reference` string in a written resource (Reference.reference wherever it sits, extensions
included) that names a resource of this server (`Type/id`, `Type/id/_history/n`, or an absolute URL on
BASE_URL) is looked up when the unit of work ends, before it commits: a transaction may refer to what a
later entry of it creates, and all of a unit's references are looked up together. A missing target is
422 and nothing of the unit is stored. Contained (`#id`), `urn:` and other servers' references are not
this server's to check, nor are types kept apart from the resource tables (the audit trail).

The lookup counts every live resource, visible to the writer or not: a reference to a resource the
writer may not read is still a reference to something that exists. `REFERENTIAL_INTEGRITY=false`
turns the check off, for bulk loads of data whose references arrive in any order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.outcome import Category, FhirError, Issue
from app.fhir.search.extract import reference_target
from app.fhir.service import FhirService
from app.fhir.validate import REFERENCE_KEYS
from app.store.repository import UnitFlush

# (type, id) of a target -> where it was referred to from ("Observation/o1 (Observation.subject)")
References = dict[tuple[str, str], str]

MAX_REPORTED = 20  # missing targets named in one OperationOutcome


def _reference_strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        # A Reference, not one of the uri elements named "reference" (Expression, DetectedIssue), which
        # sit beside keys a Reference lacks: the validator tells them apart the same way.
        is_reference = isinstance(node.get("reference"), str) and node.keys() <= REFERENCE_KEYS
        for key, value in node.items():
            if key == "reference" and is_reference:
                yield value, path
            # Into elements only: a primitive holds no reference (no generator and path for each one).
            elif key != "contained" and isinstance(value, dict | list):  # contained: refer within it
                yield from _reference_strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                yield from _reference_strings(item, path)


def local_references(resource: dict[str, Any], res_id: str, base_url: str) -> References:
    """The local references of a resource: target (type, id) -> where the first one sits."""
    res_type = resource.get("resourceType", "")
    source = f"{res_type}/{res_id}"
    found: References = {}
    for reference, path in _reference_strings(resource, res_type):
        target_type, target_id, url = reference_target(reference, base_url)
        if url is None and target_type is not None and target_id is not None:
            found.setdefault((target_type, target_id), f"{source} ({path})")
    return found


async def require_references(
    svc: FhirService, conn: AsyncConnection, resource: dict[str, Any], res_id: str
) -> None:
    """Check the resource's local references when the unit of work ends (now, outside one)."""
    if not svc.referential_integrity:
        return
    references = {
        key: where
        for key, where in local_references(resource, res_id, svc.base_url).items()
        if (rtype := svc.registry.get(key[0])) is None or rtype.store is None
    }
    if references and not svc.repo.batch_in_unit(conn, _UNIT_KEY, _flush(svc), [references]):
        await _check(svc, conn, references)


_UNIT_KEY = "referential-integrity"


def _flush(svc: FhirService) -> UnitFlush:
    async def flush(conn: AsyncConnection, batches: list[References]) -> None:
        merged: References = {}
        for references in batches:
            for key, where in references.items():
                merged.setdefault(key, where)
        await _check(svc, conn, merged)

    return flush


async def _check(svc: FhirService, conn: AsyncConnection, references: References) -> None:
    live = await svc.repo.live_keys(conn, sorted(references))
    missing = [(key, where) for key, where in sorted(references.items()) if key not in live]
    if not missing:
        return
    issues = [
        Issue(f"{t}/{i} does not exist (referred to from {where})", "not-found")
        for (t, i), where in missing[:MAX_REPORTED]
    ]
    if len(missing) > MAX_REPORTED:
        issues.append(Issue(f"... and {len(missing) - MAX_REPORTED} more missing references", "not-found"))
    first, *rest = issues
    raise FhirError(Category.UNPROCESSABLE, first.diagnostics, "not-found", extra_issues=rest)
