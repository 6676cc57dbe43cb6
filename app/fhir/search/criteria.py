"""Search criteria of the conditional interactions (If-None-Exist, conditional update and delete).

They are parsed by the search engine, strictly: an unknown parameter is an error, never ignored, because
ignoring a criterion would make a conditional write match (and overwrite or delete) too much.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry, ResourceType
from app.fhir.search.extract import index_rows
from app.fhir.search.hashing import hash64
from app.fhir.search.parse import RESULT_PARAMS, ParseContext, parse_clauses
from app.store.query import Clause, IdIn, TokenHashIn

_IGNORED = frozenset({"_format", "_pretty"})
_PARAM_NAME = re.compile("[:.]")  # a parameter's name ends at its modifier or chain


@dataclass(frozen=True)
class Criteria:
    res_type: str
    clauses: tuple[Clause, ...]
    canonical: str  # sorted, normalised form: the same criteria always give the same text
    # The parameters the criteria name (without modifiers and chains); empty when not known.
    params: frozenset[str] = frozenset()

    @property
    def hash(self) -> int:
        return hash64("conditional-create", self.res_type, self.canonical)


def parse_criteria(rtype: ResourceType, query: str, registry: Registry, base_url: str) -> Criteria:
    """Criteria from a query string (`identifier=...&birthdate=...`, optionally prefixed by `Type?`).

    Parsed by the search engine with strict handling: an unknown parameter is a 400, never ignored.
    `base_url` is this server's: an absolute reference on it is local here as in searches.
    """
    query = query.split("?", 1)[1] if "?" in query else query
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in _IGNORED]
    if not pairs:
        raise FhirError(Category.INVALID, "Conditional request without search criteria", "required")
    for name, value in pairs:
        if name in RESULT_PARAMS:
            raise FhirError(Category.INVALID, f"'{name}' is not a search criterion", "not-supported")
        if value == "":
            raise FhirError(Category.INVALID, f"Search parameter '{name}' has no value", "value")
    context = ParseContext(registry, base_url)
    clauses = parse_clauses(context, rtype, sorted(pairs), strict=True)
    canonical = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    params = frozenset(_PARAM_NAME.split(name, maxsplit=1)[0] for name, _ in pairs)
    return Criteria(rtype.name, tuple(clauses), canonical, params)


def resource_matches(criteria: Criteria, res_id: str | None, rows: list[dict[str, Any]]) -> bool:
    """Whether a resource not yet stored satisfies the criteria, judged on its token rows.

    Only `_id` and token clauses can be judged this way; other clauses count as satisfied here, and the
    write paths check the stored resource against the full criteria in the database (matches_stored).
    """
    for clause in criteria.clauses:
        if isinstance(clause, IdIn):
            if res_id not in clause.ids:
                return False
        elif isinstance(clause, TokenHashIn) and not any(row[clause.column] in clause.hashes for row in rows):
            return False
    return True


def require_match(
    criteria: Criteria, rtype: ResourceType, res_id: str | None, resource: dict[str, Any]
) -> None:
    # Only the rows of the parameters the criteria name: the whole resource is indexed again as it is
    # stored (this had doubled the index work of every conditional write that creates).
    only = criteria.params or None
    if not resource_matches(criteria, res_id, index_rows(rtype, resource, only=only).token):
        raise FhirError(
            Category.INVALID,
            f"The resource does not match its own conditional criteria '{criteria.canonical}'",
            "invalid",
        )


def has_id_clause(criteria: Criteria) -> bool:
    return any(isinstance(c, IdIn) for c in criteria.clauses)


def tokens_only(criteria: Criteria) -> bool:
    """Whether resource_matches can judge these criteria fully from the resource's own token rows."""
    return all(isinstance(c, IdIn | TokenHashIn) for c in criteria.clauses)
