"""normalize_string, date_range and decimal_range: the values both indexing and searching are built on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.fhir.search.normalize import (
    MAX_TIME,
    MIN_TIME,
    STRING_INDEX_LENGTH,
    date_range,
    decimal_range,
    fold,
    normalize_string,
    prefix_upper_bound,
)

NORWEGIAN = str.maketrans({"æ": "\ue001", "ø": "\ue002", "å": "\ue003"})


def micros(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()) * 1_000_000


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Åse", "åse"),
        ("ÅSE", "åse"),
        ("A\u030ase", "åse"),  # decomposed Å is composed first, and kept
        ("Øyvind", "øyvind"),
        ("BJØRN", "bjørn"),
        ("Ærø", "ærø"),
        ("Áilu", "ailu"),  # Sámi á folds
        ("Čáhppes", "cahppes"),  # Sámi č folds
        ("Šiellá Žanet", "siella zanet"),
        ("Đuoks Ŋuvttat Ŧ", "đuoks ŋuvttat ŧ"),  # letters of their own
        ("José García", "jose garcia"),
        ("Müller", "muller"),
        ("Straße", "strasse"),  # case folding, not just lower()
        ("  Kari  ", "kari"),
        ("ﬁnn", "finn"),  # compatibility decomposition of the ligature
    ],
)
def test_normalize_string(raw: str, normalized: str) -> None:
    # æ, ø, å are stored as private-use stand-ins that sort after z in alphabet order (see normalize.py)
    assert normalize_string(raw) == normalized.translate(NORWEGIAN)


def test_norwegian_letters_sort_after_z_in_alphabet_order() -> None:
    words = ["Åse", "Ærø", "Øyvind", "Zorro", "Anne"]
    assert sorted(words, key=normalize_string) == ["Anne", "Zorro", "Ærø", "Øyvind", "Åse"]


def test_aa_never_folds_to_a() -> None:
    assert normalize_string("Åse") != normalize_string("Ase")
    assert normalize_string("Åse") == normalize_string("åse")


def test_normalize_string_is_truncated_to_the_index_length() -> None:
    assert len(normalize_string("x" * 500)) == STRING_INDEX_LENGTH


def test_prefix_upper_bound_is_above_every_continuation() -> None:
    bound = prefix_upper_bound("bjø")
    assert "bjø" < "bjørn" < bound
    assert bound > "bjøzzzz\uffff"
    assert not bound > "bjå" or "bjå" < "bjø"


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("1972", micros(1972, 1, 1), micros(1973, 1, 1) - 1),
        ("1972-09", micros(1972, 9, 1), micros(1972, 10, 1) - 1),
        ("2024-02", micros(2024, 2, 1), micros(2024, 3, 1) - 1),  # leap year
        ("2023-02", micros(2023, 2, 1), micros(2023, 3, 1) - 1),
        ("1972-12", micros(1972, 12, 1), micros(1973, 1, 1) - 1),
        ("1972-09-13", micros(1972, 9, 13), micros(1972, 9, 14) - 1),
        ("2021-06-02T12:30Z", micros(2021, 6, 2, 12, 30), micros(2021, 6, 2, 12, 31) - 1),
        ("2021-06-02T12:30:15Z", micros(2021, 6, 2, 12, 30, 15), micros(2021, 6, 2, 12, 30, 16) - 1),
        ("2021-06-02T12:30:15", micros(2021, 6, 2, 12, 30, 15), micros(2021, 6, 2, 12, 30, 16) - 1),  # as UTC
        (
            "2021-06-02T12:30:15.25Z",
            micros(2021, 6, 2, 12, 30, 15) + 250_000,
            micros(2021, 6, 2, 12, 30, 15) + 259_999,
        ),
        (
            "2021-06-02T12:30:15.123456789Z",
            micros(2021, 6, 2, 12, 30, 15) + 123_456,
            micros(2021, 6, 2, 12, 30, 15) + 123_456,
        ),
        ("2021-06-01T23:30:00-02:00", micros(2021, 6, 2, 1, 30), micros(2021, 6, 2, 1, 30, 1) - 1),
        ("2021-06-02T00:30:00+02:00", micros(2021, 6, 1, 22, 30), micros(2021, 6, 1, 22, 30, 1) - 1),
        ("2021-06-02T00:30:00+05:30", micros(2021, 6, 1, 19, 0), micros(2021, 6, 1, 19, 0, 1) - 1),
        ("1969-12-31", micros(1969, 12, 31), -1),
        (" 1972 ", micros(1972, 1, 1), micros(1973, 1, 1) - 1),
    ],
)
def test_date_range(text: str, low: int, high: int) -> None:
    assert date_range(text) == (low, high)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "72",
        "1972-9",
        "1972-13",
        "1972-02-30",
        "1972-09-13T10",
        "1972-09-13T25:00Z",
        "13.09.1972",
        "x1972",
    ],
)
def test_malformed_dates(text: str) -> None:
    assert date_range(text) is None


def test_open_ends_lie_outside_every_date() -> None:
    low, high = date_range("0001-01-01") or (0, 0)
    assert low > MIN_TIME
    _, high = date_range("9999-12-31T23:59:59.999999Z") or (0, 0)
    assert high < MAX_TIME


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", (100.0, 99.5, 100.5)),
        ("100.0", (100.0, 99.95, 100.05)),
        ("100.00", (100.0, 99.995, 100.005)),
        ("0.2", (0.2, 0.15, 0.25)),  # exact bounds, no 0.15000000000000002
        ("5.4", (5.4, 5.35, 5.45)),
        ("1e2", (100.0, 50.0, 150.0)),
        ("1.5e-3", (0.0015, 0.00145, 0.00155)),
        ("-2.5", (-2.5, -2.55, -2.45)),
        ("0", (0.0, -0.5, 0.5)),
        (" 7 ", (7.0, 6.5, 7.5)),
    ],
)
def test_decimal_range(text: str, expected: tuple[float, float, float]) -> None:
    assert decimal_range(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "NaN", "nan", "inf", "-Infinity", "1_000", "1,5", "0x10", "5 mg", "1e"]
)
def test_not_a_decimal(text: str) -> None:
    assert decimal_range(text) is None


@pytest.mark.parametrize(
    "text", ["Kari Nordmann", "  OLA  ", "Straße-1", "x" * 300, "O'Brien\tJr.", "", "ABC123def", "Å"]
)
def test_the_ascii_fast_path_folds_as_the_full_path(text: str) -> None:
    assert normalize_string(text) == fold(text)
