"""Personal numbers as pure functions, table driven: fødselsnummer, D-nummer, H-nummer, felles hjelpenummer.

Every number here is synthetic: month + 80 (Tenor) or + 40, or an impossible date. The literals were built
from the published rules (weights 3 7 6 1 8 9 4 5 2 / 5 4 3 2 7 6 5 4 3 2, and for the 2032 rule a k1 sum
remainder of 1-3), independently of the code under test.
"""

from __future__ import annotations

import pytest

from app.resources.no_basis.identifiers import (
    has_valid_personal_check_digits,
    k1_remainder,
    personal_number_check_digits,
    synthetic_fnr,
)
from app.resources.no_basis.personal import (
    D_NUMMER,
    FODSELSNUMMER,
    H_NUMMER,
    IS_D_NUMMER,
    NEEDS_DAY_40,
    NEEDS_MONTH_40,
    NO_DATE,
    NOT_8_OR_9,
    NOT_11_DIGITS,
    WRONG_CHECK_DIGIT,
    PersonalNumberKind,
    birth_year,
    fh_number_problem,
    personal_number_problem,
)


def wrong_k2(number: str) -> str:
    return number[:10] + str((int(number[10]) + 1) % 10)


FNR_CASES = [
    ("tenor synthetic, month + 80", "13817210036", None),
    ("older synthetic, month + 40", "30468520091", None),
    ("synthetic_fnr helper", synthetic_fnr(2, 2, 1948, 200), None),
    ("2032 rule, k1 remainder 1", "13817210044", None),
    ("2032 rule, k1 remainder 2", "13817210052", None),
    ("2032 rule, k1 remainder 3", "13817210060", None),
    ("k1 remainder 4", "13817210079", WRONG_CHECK_DIGIT),
    ("wrong k2", wrong_k2("13817210036"), WRONG_CHECK_DIGIT),
    ("too short", "1381721003", NOT_11_DIGITS),
    ("too long", "138172100360", NOT_11_DIGITS),
    ("letters", "1381721003X", NOT_11_DIGITS),
    ("spaces", "138172 10036", NOT_11_DIGITS),
    ("non-ASCII digits", "١٣٨١٧٢١٠٠٣٦", NOT_11_DIGITS),
    ("empty", "", NOT_11_DIGITS),
    ("29.02.1900 (individual 000-499: 1900, not a leap year)", "29820000100", NO_DATE),
    ("29.02.2000 (individual 500-999, year 00-39: 2000, a leap year)", "29820050043", None),
    ("29.02.1996", "29829610041", None),
    ("29.02.1997", "29829710062", NO_DATE),
    ("29.02.1896 (individual 500-749, year 54-99: 1800s)", "29829650183", None),
    ("30 February", "30829010085", NO_DATE),
    ("31 April", "31849010185", NO_DATE),
    ("month 13 + 80", "01939010110", NO_DATE),
    ("month 0 + 80", "01809010011", NO_DATE),
    ("month 21: no known offset", "01219010032", NO_DATE),
    ("day 00", "00819010072", NO_DATE),
    ("day 32", "32819010063", NO_DATE),
    ("a D-nummer is not a fødselsnummer", "41819010186", IS_D_NUMMER),
    # individual 800 with year 70 had no century before 2032; numbers issued from 2032 do not encode one
    ("individual 750-899, year 40-99", "15817080011", None),
    ("29.02.72, individual 800", "29827280060", None),
    ("29.02.73, individual 800", "29827380081", NO_DATE),
]

DNR_CASES = [
    ("day + 40, month + 80", "41819010186", None),
    ("day 71 (31 + 40)", "71819010018", None),
    ("day 72", "72819010057", NO_DATE),
    ("day + 40 with month + 40", "41529010050", None),
    ("29.02.1900 as D-nummer", "69820000013", NO_DATE),
    ("29.02.2000 as D-nummer", "69820050037", None),
    ("2032 rule, k1 remainder 2", "41819010011", None),
    ("a fødselsnummer on the D-nummer system", "13817210036", NEEDS_DAY_40),
    ("wrong k2", wrong_k2("41819010186"), WRONG_CHECK_DIGIT),
    ("ten digits", "4181901018", NOT_11_DIGITS),
]

HNR_CASES = [
    ("month + 40", "13497210083", None),
    ("29.02.1900 as H-nummer", "29420000047", NO_DATE),
    ("29.02.2000 as H-nummer", "29420060023", None),
    ("month + 80 is not an H-nummer", "13817210036", NEEDS_MONTH_40),
    ("the 2032 rule is not for H-nummer", "13497210091", WRONG_CHECK_DIGIT),
    ("wrong k2", wrong_k2("13497210083"), WRONG_CHECK_DIGIT),
    ("D-nummer day", "41529010050", IS_D_NUMMER),
]


@pytest.mark.parametrize(
    ("kind", "number", "expected"),
    [pytest.param(FODSELSNUMMER, n, e, id=f"fnr: {label}") for label, n, e in FNR_CASES]
    + [pytest.param(D_NUMMER, n, e, id=f"dnr: {label}") for label, n, e in DNR_CASES]
    + [pytest.param(H_NUMMER, n, e, id=f"hnr: {label}") for label, n, e in HNR_CASES],
)
def test_personal_numbers(kind: PersonalNumberKind, number: str, expected: str | None) -> None:
    assert personal_number_problem(number, kind) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("81234567802", None),
        ("90123456768", None),
        ("70123456716", NOT_8_OR_9),  # valid check digits, but 7 is not an FH first digit
        (wrong_k2("81234567802"), WRONG_CHECK_DIGIT),
        ("8123456780", NOT_11_DIGITS),
        ("8123456780a", NOT_11_DIGITS),
    ],
)
def test_felles_hjelpenummer(number: str, expected: str | None) -> None:
    assert fh_number_problem(number) == expected


@pytest.mark.parametrize(
    ("individual", "year", "full"),
    [
        (0, 0, 1900),
        (499, 99, 1999),
        (500, 54, 1854),
        (749, 99, 1899),
        (500, 39, 2039),
        (999, 0, 2000),
        (900, 40, 1940),
        (999, 99, 1999),
        (750, 39, 2039),
        (750, 40, 1940),  # no pre-2032 century: any century has the same leap years for 40-99
        (600, 53, 1953),
    ],
)
def test_century_from_individual_number(individual: int, year: int, full: int) -> None:
    assert birth_year(individual, year) == full


def test_2032_rule_accepts_exactly_four_k1_values() -> None:
    """For one set of nine digits, the classic rule allows one k1; the 2032 rule up to four (fewer when a
    remainder would need k1 = 10), and k2 then follows from k1."""
    first_nine = "138172100"
    accepted = [
        k1
        for k1 in range(10)
        for k2 in range(10)
        if has_valid_personal_check_digits(f"{first_nine}{k1}{k2}", allow_2032=True)
    ]
    classic = [
        k1 for k1 in range(10) for k2 in range(10) if has_valid_personal_check_digits(f"{first_nine}{k1}{k2}")
    ]
    assert len(classic) == 1
    assert len(accepted) == 4
    assert sorted(k1_remainder(f"{first_nine}{k1}0") for k1 in accepted) == [0, 1, 2, 3]


def test_classic_check_digits_agree_with_the_two_step_computation() -> None:
    for number in ("13817210036", "41819010186", "13497210083", "81234567802"):
        assert personal_number_check_digits(number[:9]) == number[9:]
