"""Typed search clauses: what the FHIR layer asks the store for, free of SQL and of FHIR syntax.

Every clause is about one resource (the "subject" of the search). Values are already normalised and
hashed by the FHIR layer; the store turns clauses into correlated EXISTS subqueries on index tables.
Within a clause the alternatives are ORed (a comma-separated search value); clauses are ANDed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]


@dataclass(frozen=True, slots=True)
class IdIn:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenHashIn:
    """Token equality: rows of idx_token whose `column` is one of the hashes."""

    column: Literal["hash_value", "hash_sys_value", "hash_sys"]
    hashes: tuple[int, ...]
    negate: bool = False  # :not — no row matches
    # For hash_sys_value, which has no index of its own: the hash_value of each code, which has one. The
    # rows are looked up by code and filtered by system (a code is nearly always as selective).
    value_hashes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StringMatch:
    identity: int
    mode: Literal["prefix", "contains", "exact"]
    values: tuple[str, ...]  # normalised (for exact, what the exact values normalise to)
    exact: tuple[str, ...] = ()  # the exact values of an :exact search


@dataclass(frozen=True, slots=True)
class RangeCondition:
    """One comparison of an indexed range [low, high] (dates, numbers, quantities) with a search range."""

    prefix: Prefix
    low: float | datetime  # datetimes only for _lastUpdated (a column, not an index table)
    high: float | datetime


@dataclass(frozen=True, slots=True)
class DateMatch:
    identity: int
    conditions: tuple[RangeCondition, ...]


@dataclass(frozen=True, slots=True)
class LastUpdatedMatch:
    conditions: tuple[RangeCondition, ...]


@dataclass(frozen=True, slots=True)
class NumberMatch:
    identity: int
    conditions: tuple[RangeCondition, ...]


@dataclass(frozen=True, slots=True)
class QuantityCondition:
    range: RangeCondition
    unit_column: Literal["hash_sys_code", "hash_code"] | None  # None: any unit
    unit_hash: int = 0


@dataclass(frozen=True, slots=True)
class QuantityMatch:
    identity: int
    conditions: tuple[QuantityCondition, ...]


@dataclass(frozen=True, slots=True)
class UriMatch:
    identity: int
    mode: Literal["eq", "above", "below"]
    values: tuple[str, ...]
    hashes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ReferenceMatch:
    column: Literal["hash_target", "hash_target_id"]
    hashes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CompositeAlternative:
    """One `first$second` value of a composite parameter."""

    first_column: Literal["first_sys_value", "first_value"]
    first_hash: int
    second_kind: Literal["token", "quantity", "date", "string"]
    second_column: Literal["second_a", "second_b"] | None = None  # token, or quantity unit (None: any unit)
    second_hash: int = 0
    second_range: RangeCondition | None = None  # quantity, date
    second_prefix: str = ""  # string


@dataclass(frozen=True, slots=True)
class CompositeMatch:
    identity: int
    alternatives: tuple[CompositeAlternative, ...]


@dataclass(frozen=True, slots=True)
class Missing:
    table: str  # idx_token, idx_string, ...
    identity: int
    missing: bool


@dataclass(frozen=True, slots=True)
class Chain:
    """subject:Patient.name=x — a reference (param identity) to a live target that matches `inner`."""

    identity: int
    target_types: tuple[str, ...]
    inner: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class Has:
    """_has:Observation:patient:code=x — some live `source_type` resource references the subject and
    matches `inner`."""

    source_type: str
    identity: int
    inner: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class InCompartment:
    """The subject references one of `target_ids` of `target_type` through one of the parameters
    (identities); `target_ids` None: any resource of that type (a bulk export of all patients' data)."""

    identities: tuple[int, ...]
    target_type: str
    target_ids: tuple[str, ...] | None
    include_target: bool = False  # the targets themselves belong to the result too ($everything)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """OR of clause groups (each group ANDed): used for :not on whole parameters and system search."""

    groups: tuple[tuple[Clause, ...], ...]


@dataclass(frozen=True, slots=True)
class Not:
    clause: Clause


@dataclass(frozen=True, slots=True)
class TypeIn:
    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ValueSetIn:
    """token:in / token:not-in before the FHIR layer has expanded the value set (never reaches SQL)."""

    res_type: str
    param: str
    value_set: str  # canonical URL or ValueSet/id
    negate: bool


Clause = (
    IdIn
    | TokenHashIn
    | StringMatch
    | DateMatch
    | LastUpdatedMatch
    | NumberMatch
    | QuantityMatch
    | UriMatch
    | ReferenceMatch
    | CompositeMatch
    | Missing
    | Chain
    | Has
    | InCompartment
    | AnyOf
    | Not
    | TypeIn
    | ValueSetIn
)


@dataclass(frozen=True, slots=True)
class SortKey:
    """Order by a parameter's indexed value (or _id / _lastUpdated); missing values always sort last."""

    kind: Literal["id", "lastUpdated", "token", "string", "date", "number", "quantity", "uri", "reference"]
    identity: int
    descending: bool


@dataclass(frozen=True, slots=True)
class TypedClauses:
    """The clauses for one resource type (a system search ORs several of these). res_type "*": the
    clauses are type-independent and themselves restrict the types (TypeIn)."""

    res_type: str
    clauses: tuple[Clause, ...]
