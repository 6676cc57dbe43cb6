"""Mod-11 check digits of Norwegian personal and organisation numbers."""

from __future__ import annotations

import pytest

from app.resources.no_basis.identifiers import (
    has_valid_orgnr,
    has_valid_personal_check_digits,
    personal_number_check_digits,
    synthetic_fnr,
)


@pytest.mark.parametrize("number", [synthetic_fnr(1, 1, 1990, 100), synthetic_fnr(29, 2, 2004, 600)])
def test_synthetic_numbers_have_valid_check_digits(number: str) -> None:
    assert has_valid_personal_check_digits(number)
    assert int(number[2:4]) > 80


def test_wrong_check_digit_is_detected() -> None:
    number = synthetic_fnr(13, 9, 1972, 100)
    wrong = number[:10] + str((int(number[10]) + 1) % 10)
    assert not has_valid_personal_check_digits(wrong)
    assert not has_valid_personal_check_digits("1234")
    assert not has_valid_personal_check_digits("abcdefghijk")


def test_first_check_digit_of_ten_means_no_valid_number() -> None:
    impossible = [
        f"{n:09d}" for n in range(100000000, 100000200) if personal_number_check_digits(f"{n:09d}") is None
    ]
    assert impossible, "some nine-digit prefixes have no valid check digits"


def test_organisation_numbers() -> None:
    assert has_valid_orgnr("991000003")
    assert not has_valid_orgnr("991000004")
    assert not has_valid_orgnr("99100000")
