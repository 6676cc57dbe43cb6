"""values.py: splitting and unescaping search values, prefixes, range conditions; paging cursors."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from app.fhir.outcome import FhirError
from app.fhir.search import paging
from app.fhir.search.normalize import date_range
from app.fhir.search.values import (
    date_condition,
    datetime_condition,
    number_condition,
    split_escaped,
    split_or,
    take_prefix,
)
from app.store.query import RangeCondition


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a", ["a"]),
        ("a,b", ["a", "b"]),
        (r"a\,b", [r"a\,b"]),  # kept escaped: the alternative is unescaped later
        (r"a\,b,c", [r"a\,b", "c"]),
        (r"a\\,b", [r"a\\", "b"]),  # an escaped backslash does not escape the comma
        (r"sys|co\|de,x", [r"sys|co\|de", "x"]),
        ("a,,b", ["a", "", "b"]),
        ("", [""]),
    ],
)
def test_split_or(value: str, parts: list[str]) -> None:
    assert split_or(value) == parts


@pytest.mark.parametrize(
    ("value", "separator", "parts"),
    [
        (r"a\,b", ",", ["a,b"]),
        (r"http://x|co\|de", "|", ["http://x", "co|de"]),
        ("|code", "|", ["", "code"]),
        ("system|", "|", ["system", ""]),
        (r"a\\b", ",", ["a\\b"]),
        (r"a\$b", ",", ["a$b"]),
        ("5.4||mg", "|", ["5.4", "", "mg"]),
    ],
)
def test_split_escaped(value: str, separator: str, parts: list[str]) -> None:
    assert split_escaped(value, separator) == parts


def test_split_or_then_unescape_gives_the_literal_comma() -> None:
    assert [split_escaped(v, "\x00")[0] for v in split_or(r"Hansen\, Olsen,Berg")] == [
        "Hansen, Olsen",
        "Berg",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gt5", ("gt", "5")),
        ("ge2021-01-01", ("ge", "2021-01-01")),
        ("lt-5", ("lt", "-5")),
        ("ne0.2", ("ne", "0.2")),
        ("sa2021", ("sa", "2021")),
        ("eb2021", ("eb", "2021")),
        ("ap100", ("ap", "100")),
        ("eq100", ("eq", "100")),
        ("le1", ("le", "1")),
        ("100", ("eq", "100")),
        ("2021-01-01", ("eq", "2021-01-01")),
        ("gt", ("eq", "gt")),  # a prefix needs a value after it
        ("apple", ("eq", "apple")),  # a prefix is never followed by a letter
        ("nest", ("eq", "nest")),
        ("xx5", ("eq", "xx5")),
    ],
)
def test_take_prefix(value: str, expected: tuple[str, str]) -> None:
    assert take_prefix(value) == expected


def test_number_equality_is_half_open() -> None:
    assert number_condition("probability", "100") == RangeCondition(
        "eq", 99.5, math.nextafter(100.5, -math.inf)
    )
    assert number_condition("probability", "ne0.2") == RangeCondition(
        "ne", 0.15, math.nextafter(0.25, -math.inf)
    )


def test_number_comparisons_use_the_value_itself() -> None:
    assert number_condition("p", "gt100") == RangeCondition("gt", 100.0, 100.0)
    assert number_condition("p", "le0.5") == RangeCondition("le", 0.5, 0.5)
    ap = number_condition("p", "ap200")
    assert ap == RangeCondition("ap", 180.0, 220.0)


def test_malformed_numbers_and_dates_raise_invalid() -> None:
    for raw in ("abc", "NaN", "gt", "1_000"):
        with pytest.raises(FhirError):
            number_condition("probability", raw)
    for raw in ("13.09.1972", "1972-13", "gtyesterday"):
        with pytest.raises(FhirError):
            date_condition("birthdate", raw, 0)


def test_date_condition() -> None:
    assert date_condition("birthdate", "ge1972", 0) == RangeCondition("ge", *(date_range("1972") or (0, 0)))
    now = datetime(2020, 1, 1, tzinfo=UTC)
    now_micros = int(now.timestamp()) * 1_000_000
    low, high = date_range("2010-01-01") or (0, 0)
    ap = date_condition("date", "ap2010-01-01", now_micros)
    margin = (now_micros - low) // 10  # 10 % of the distance to now
    assert (ap.low, ap.high) == (low - margin, high + margin)


def test_datetime_condition_turns_micros_into_utc_datetimes() -> None:
    low, high = date_range("2021-06-02T12:00:00Z") or (0, 0)
    condition = datetime_condition(RangeCondition("eq", low, high))
    assert condition.low == datetime(2021, 6, 2, 12, 0, 0, tzinfo=UTC)
    assert condition.high == datetime(2021, 6, 2, 12, 0, 0, 999_999, tzinfo=UTC)
    # Beyond what a datetime holds: clamped, never an exception.
    wide = datetime_condition(RangeCondition("ap", -(2**62), 2**62))
    assert wide.low == datetime.min.replace(tzinfo=UTC)
    assert wide.high == datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "keys",
    [
        ("berg", 12),
        (1.5, -3, None, 7),
        (datetime(2021, 6, 2, 12, 0, 0, 123_000, tzinfo=UTC), 4),
        ("\U0010ffff", 2**62, 1),  # the sort sentinels
        ("Åse Øyvind", 1),
        (),
    ],
)
def test_cursor_round_trip(keys: tuple[object, ...]) -> None:
    for direction in (paging.NEXT, paging.PREVIOUS):
        token = paging.encode(direction, keys)
        assert not set(token) & set("=/+")  # URL safe without quoting
        assert paging.decode(token) == (direction, keys)


def test_last_cursor_has_no_keys() -> None:
    assert paging.decode(paging.encode(paging.LAST, None)) == (paging.LAST, None)
    assert paging.decode(paging.encode(paging.LAST, ("x", 1))) == (paging.LAST, None)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64!",
        "e30",  # {}
        "eyJkIjoieCIsImsiOltdfQ",  # {"d":"x","k":[]}: unknown direction
        "eyJkIjoibiJ9",  # {"d":"n"}: no keys
        "WzFd",  # [1]
    ],
)
def test_bad_cursors_are_invalid(token: str) -> None:
    with pytest.raises(FhirError) as info:
        paging.decode(token)
    assert info.value.category.value == "invalid"
