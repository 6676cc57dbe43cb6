"""Search criteria of the conditional interactions (If-None-Exist, conditional update and delete).

Only `_id` and token parameters are understood here; any other parameter is an error, never ignored,
because ignoring a criterion would make a conditional write match (and overwrite or delete) too much.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from app.fhir.outcome import Category, FhirError
from app.fhir.registry import ResourceType
from app.fhir.search.extract import index_rows
from app.fhir.search.hashing import hash64
from app.store.query import Clause, IdIn, TokenHashIn

_IGNORED = frozenset({"_format", "_pretty"})


@dataclass(frozen=True)
class Criteria:
    res_type: str
    clauses: tuple[Clause, ...]
    canonical: str  # sorted, normalised form: the same criteria always give the same text

    @property
    def hash(self) -> int:
        return hash64("conditional-create", self.res_type, self.canonical)


def _split_escaped(value: str, sep: str) -> list[str]:
    """Split on `sep` except where escaped with a backslash (FHIR search escaping)."""
    parts, current, escaped = [], [], False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _token_hashes(res_type: str, param: str, value: str) -> TokenHashIn:
    """A single comma-separated OR-list of token values -> one index clause (all on the same column)."""
    by_column: dict[str, list[int]] = {}
    for alt in _split_escaped(value, ","):
        pieces = _split_escaped(alt, "|") if "|" in alt.replace("\\|", "") else [alt]
        if len(pieces) == 1:
            by_column.setdefault("hash_value", []).append(hash64(res_type, param, pieces[0]))
        elif len(pieces) == 2:
            system, code = pieces
            if code == "":
                by_column.setdefault("hash_sys", []).append(hash64(res_type, param, system))
            else:
                by_column.setdefault("hash_sys_value", []).append(hash64(res_type, param, system, code))
        else:
            raise FhirError(Category.INVALID, f"Invalid token value for '{param}'", "value")
    if len(by_column) != 1:
        raise FhirError(
            Category.INVALID,
            f"Mixing token forms (code, system|code, system|) in one '{param}' is not supported",
        )
    ((column, hashes),) = by_column.items()
    return TokenHashIn(column, tuple(hashes))  # type: ignore[arg-type]


def parse_criteria(rtype: ResourceType, query: str) -> Criteria:
    query = query.split("?", 1)[1] if "?" in query else query
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in _IGNORED]
    if not pairs:
        raise FhirError(Category.INVALID, "Conditional request without search criteria", "required")
    clauses: list[Clause] = []
    for name, value in sorted(pairs):
        if value == "":
            raise FhirError(Category.INVALID, f"Search parameter '{name}' has no value", "value")
        if name == "_id":
            clauses.append(IdIn(tuple(_split_escaped(value, ","))))
            continue
        param = rtype.search_params.get(name)
        if param is None or param.type != "token":
            raise FhirError(
                Category.INVALID,
                f"Search parameter '{name}' is not supported in conditional requests on {rtype.name}",
                "not-supported",
            )
        clauses.append(_token_hashes(rtype.name, name, value))
    canonical = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    return Criteria(rtype.name, tuple(clauses), canonical)


def resource_matches(criteria: Criteria, res_id: str | None, rows: list[dict[str, Any]]) -> bool:
    """Whether a resource about to be written satisfies the criteria that it is created under."""
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
    if not resource_matches(criteria, res_id, index_rows(rtype, resource).token):
        raise FhirError(
            Category.INVALID,
            f"The resource does not match its own conditional criteria '{criteria.canonical}'",
            "invalid",
        )
