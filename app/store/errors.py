"""Driver errors that are the database's passing state, not a defect: the API answers them with 503."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# PostgreSQL's query_canceled: statement_timeout (DB_STATEMENT_TIMEOUT_MS) or a cancel request.
QUERY_CANCELED = "57014"
# PostgreSQL's deadlock_detected: two units each waiting for a row the other holds; one is ended.
DEADLOCK = "40P01"


def is_deadlock(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == DEADLOCK


def transient_reason(exc: DBAPIError) -> str | None:
    """Why the statement failed, in words fit for a client, when trying again later may succeed; else None."""
    if exc.connection_invalidated:
        return "The connection to the database was lost; try again"
    if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
        return "The database cancelled the request because it ran longer than the time limit"
    if is_deadlock(exc):
        return "The request met a concurrent change of the same data; try again"
    return None
