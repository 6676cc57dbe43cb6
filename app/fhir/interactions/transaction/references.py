"""Reference resolution inside a transaction: fullUrls and conditional references become Type/id.

One map (reference text -> Type/id) is built for the whole bundle, then each resource is walked once and
copied only along the paths that change, so the parsed entries stay untouched for a retry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.hooks import MatchCheck
from app.fhir.interactions.transaction.entries import Entry
from app.fhir.outcome import Category, FhirError
from app.fhir.search.criteria import parse_criteria, resource_matches
from app.fhir.search.extract import index_rows
from app.fhir.service import FhirService
from app.store.query import IdIn, TokenHashIn
from app.store.visibility import EVERY_ROW

PLACEHOLDERS = ("urn:uuid:", "urn:oid:")


def rewrite(value: Any, mapping: Mapping[str, str], unresolved: list[str]) -> Any:
    """`value` with every mapped Reference.reference replaced; placeholders without a target are collected."""
    if isinstance(value, dict):
        changed: dict[str, Any] | None = None
        for key, child in value.items():
            if key == "reference" and isinstance(child, str):
                new = mapping.get(child)
                if new is None:
                    if child.startswith(PLACEHOLDERS):
                        unresolved.append(child)
                    continue
            elif isinstance(child, dict | list):
                new = rewrite(child, mapping, unresolved)
                if new is child:
                    continue
            else:
                continue
            if changed is None:
                changed = dict(value)
            changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list):
        items: list[Any] | None = None
        for index, child in enumerate(value):
            if isinstance(child, dict | list):
                new = rewrite(child, mapping, unresolved)
                if new is not child:
                    if items is None:
                        items = list(value)
                    items[index] = new
        return value if items is None else items
    return value


def rewrite_resource(entry: Entry, mapping: Mapping[str, str]) -> dict[str, Any]:
    assert entry.resource is not None
    if not entry.has_references or not mapping:
        return entry.resource
    unresolved: list[str] = []
    resource: dict[str, Any] = rewrite(entry.resource, mapping, unresolved)
    # A Bundle stored as a resource (a document) refers to its own entries' fullUrls: not ours to check.
    if unresolved and resource.get("resourceType") != "Bundle":
        raise entry.fail(
            FhirError(
                Category.INVALID,
                f"Reference '{unresolved[0][:100]}' matches the fullUrl of no entry in this transaction",
                "not-found",
            ),
        )
    return resource


@dataclass(frozen=True)
class Candidate:
    """A resource this transaction is about to write, for matching conditional references against."""

    entry: Entry
    res_id: str


async def resolve_conditional(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    entries: Sequence[Entry],
    candidates: Sequence[Candidate],
) -> dict[str, str]:
    """Type?criteria -> Type/id for every conditional reference: exactly one match among the stored
    resources (the transaction's deletes already applied) and the resources this transaction writes.

    Like conditional create, a reference may resolve to a resource the caller cannot read (a patient
    named by fødselsnummer when care starts): the caller learns its id, never its content, and the access
    policy judges (and audits) it; chains and _has in the criteria look only into what the caller sees."""
    resolved: dict[str, str] = {}
    rows: dict[int, list[dict[str, Any]]] = {}
    by_type: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        if candidate.entry.rtype is not None and candidate.entry.resource is not None:
            by_type.setdefault(candidate.entry.rtype.name, []).append(candidate)
    for entry in entries:
        for ref in entry.conditional_references:
            if ref in resolved:
                continue
            try:
                resolved[ref] = await _resolve_one(svc, ctx, conn, ref, by_type, rows)
            except FhirError as exc:
                raise entry.fail(exc) from None
    return resolved


async def _resolve_one(
    svc: FhirService,
    ctx: RequestContext,
    conn: AsyncConnection,
    ref: str,
    by_type: dict[str, list[Candidate]],
    rows: dict[int, list[dict[str, Any]]],
) -> str:
    res_type, _, query = ref.partition("?")
    rtype = svc.resource_type(res_type)
    criteria = parse_criteria(rtype, query, svc.registry, svc.base_url)
    pks = await svc.repo.find(conn, res_type, criteria.clauses, 2, EVERY_ROW, inner=svc.hooks.visible(ctx))
    stored_matches = await svc.repo.current_by_pks(conn, pks, EVERY_ROW)
    if len(stored_matches) == 1:
        (stored,) = stored_matches
        check = MatchCheck(ctx, conn, "reference", res_type, stored.res_id, stored.pk, stored.version)
        await svc.hooks.may_know(check)  # an id only: the policy may refuse (scopes) and audits
    matches = {stored.res_id for stored in stored_matches}
    # Resources of this transaction are not stored yet: they are matched on their token rows, which can
    # judge _id and token criteria only (identifiers, as Synthea uses); other criteria see stored ones.
    judgeable = all(isinstance(c, IdIn | TokenHashIn) for c in criteria.clauses)
    for candidate in by_type.get(res_type, ()) if judgeable else ():
        entry = candidate.entry
        assert entry.resource is not None
        if entry.index not in rows:
            rows[entry.index] = index_rows(rtype, entry.resource).token
        if resource_matches(criteria, candidate.res_id, rows[entry.index]):
            matches.add(candidate.res_id)
    if len(matches) != 1:
        found = "no resource" if not matches else "more than one resource"
        raise FhirError(
            Category.PRECONDITION,
            f"Conditional reference '{ref[:200]}' matches {found}; exactly one is required",
            "not-found" if not matches else "multiple-matches",
        )
    return f"{res_type}/{matches.pop()}"
