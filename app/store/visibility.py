"""Row-level visibility: a per-request rule that every query returning resources applies in SQL.

The store knows nothing about who may see what; an access policy (the security layer) supplies the rule
as a SQL condition on a `resource` alias, so filtering happens in the database (counts and pages alike),
never by fetching rows and dropping them afterwards.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.sql.elements import ColumnElement


class RowFilter(Protocol):
    def condition(self, subject: Any) -> ColumnElement[bool]:
        """True for rows of `subject` (an alias of the resource table) that the caller may see."""
        ...
