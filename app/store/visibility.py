"""Row-level visibility: a per-request rule that every query returning resources applies in SQL.

The store knows nothing about who may see what; an access policy (the security layer) supplies the rule
as a SQL condition on a `resource` alias, so filtering happens in the database (counts and pages alike),
never by fetching rows and dropping them afterwards. Every query that returns or tests resources takes a
rule; seeing everything is itself a rule (`Unrestricted`) that names why, never a missing argument.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import true
from sqlalchemy.sql.elements import ColumnElement


class RowFilter(Protocol):
    def condition(self, subject: Any, types: frozenset[str] | None = None) -> ColumnElement[bool]:
        """True for rows of `subject` (an alias of the resource table) that the caller may see. `types`:
        the types `subject`'s rows can have, when the statement limits them (None: any type); the rule
        may then leave out what cannot apply to them."""
        ...

    @property
    def parameters(self) -> Mapping[str, Any]:
        """Values for the condition's bound parameters, given to every statement that holds it when it is
        executed (the condition is shared between statements and requests, so it carries none itself)."""
        ...

    @property
    def shape(self) -> Hashable:
        """Equal for rules whose conditions are the same SQL (only their `parameters` differ): statements
        holding the condition are built once per shape (app/store/search_templates.py)."""
        ...


@dataclass(frozen=True)
class Unrestricted:
    """Every row: for callers the policy does not limit, and for checks that must see every resource
    (uniqueness of conditional criteria), whose answers are then judged per resource."""

    reason: str

    def condition(self, subject: Any, types: frozenset[str] | None = None) -> ColumnElement[bool]:
        return true()

    @property
    def shape(self) -> Hashable:
        return "unrestricted"

    @property
    def parameters(self) -> Mapping[str, Any]:
        return {}


# Uniqueness checks (conditional criteria, claims) must count resources the caller cannot see.
EVERY_ROW = Unrestricted("uniqueness checks count every resource")


def is_unrestricted(rule: RowFilter) -> bool:
    return isinstance(rule, Unrestricted)


def parameters(*rules: RowFilter | None) -> dict[str, Any]:
    """The values for a statement that holds the conditions of `rules`; a rule that would give one of
    them another value than a rule before it is refused (never a silently mixed rule)."""
    values: dict[str, Any] = {}
    for rule in rules:
        if rule is None:
            continue
        for key, value in rule.parameters.items():
            if values.setdefault(key, value) != value:
                raise ValueError(f"two row filters in one statement disagree on {key}")
    return values
