"""errors.transient_reason: which database errors are a passing state the client may try again after."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from app.store.errors import DEADLOCK, QUERY_CANCELED, is_deadlock, transient_reason


class DriverError(Exception):
    """A driver exception as asyncpg's carry it: the SQLSTATE on the exception."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(sqlstate: str) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, DriverError(sqlstate))


def test_a_deadlock_is_worth_trying_again() -> None:
    assert is_deadlock(wrapped(DEADLOCK))
    assert (
        transient_reason(wrapped(DEADLOCK))
        == "The request met a concurrent change of the same data; try again"
    )


def test_a_cancelled_statement_is_worth_trying_again_and_other_errors_are_not() -> None:
    assert not is_deadlock(wrapped(QUERY_CANCELED))
    assert transient_reason(wrapped(QUERY_CANCELED)) is not None
    assert transient_reason(wrapped("23505")) is None  # unique_violation: a defect or a race, not a state
    assert not is_deadlock(wrapped("23505"))
