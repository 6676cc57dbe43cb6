"""Row-level visibility: a per-request rule that every query returning resources applies in SQL.

The store knows nothing about who may see what; an access policy (the security layer) supplies the rule
as a SQL condition on a `resource` alias, so filtering happens in the database (counts and pages alike),
never by fetching rows and dropping them afterwards. Every query that returns or tests resources takes a
rule; seeing everything is itself a rule (`Unrestricted`) that names why, never a missing argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import true
from sqlalchemy.sql.elements import ColumnElement


class RowFilter(Protocol):
    def condition(self, subject: Any) -> ColumnElement[bool]:
        """True for rows of `subject` (an alias of the resource table) that the caller may see."""
        ...


@dataclass(frozen=True)
class Unrestricted:
    """Every row: for callers the policy does not limit, and for checks that must see every resource
    (uniqueness of conditional criteria), whose answers are then judged per resource."""

    reason: str

    def condition(self, subject: Any) -> ColumnElement[bool]:
        return true()


# Uniqueness checks (conditional criteria, claims) must count resources the caller cannot see.
EVERY_ROW = Unrestricted("uniqueness checks count every resource")


def is_unrestricted(rule: RowFilter) -> bool:
    return isinstance(rule, Unrestricted)
