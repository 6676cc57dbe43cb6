"""The pack's clinical codes as data: unique, in a section each, with a Norwegian display, and free of typos
(LOINC's mod-10 check digit)."""

from __future__ import annotations

import pytest

from app.resources.pregnancy_card.codes import (
    CARD_SYSTEM,
    CODES,
    LOINC,
    SECTION_TITLES,
    SNOMED,
    ClinicalCode,
    Section,
    clinical,
    in_section,
    key_of,
)


def loinc_valid(code: str) -> bool:
    """LOINC's check digit after the hyphen: mod 10 (Luhn) over the digits before it."""
    number, _, check = code.partition("-")
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit // 10 + digit % 10
    return check == str((10 - total % 10) % 10)


def test_the_check_digit_functions_know_good_from_bad() -> None:
    assert loinc_valid("8665-2")
    assert not loinc_valid("8665-3")
    assert loinc_valid("11881-0")
    assert not loinc_valid("11881-9")


@pytest.mark.parametrize("entry", CODES.values(), ids=lambda entry: entry.key)
def test_each_code_is_well_formed_and_displayed_in_norwegian(entry: ClinicalCode) -> None:
    assert entry.system in {LOINC, SNOMED, CARD_SYSTEM}
    if entry.system == LOINC:
        assert loinc_valid(entry.code), entry.code
    if entry.system == SNOMED:
        assert entry.code.isdigit(), entry.code
    if entry.system == CARD_SYSTEM:
        assert not entry.verified  # the pack's own code stands in for one not found
    assert entry.display_no
    assert entry.display
    assert entry.resource in {"Observation", "ServiceRequest"}
    assert entry.concept() == {"coding": [entry.coding()], "text": entry.display_no}
    assert key_of(entry.coding()) == entry.key


def test_keys_and_codes_are_unique() -> None:
    pairs = [(entry.system, entry.code) for entry in CODES.values()]
    assert len(set(pairs)) == len(pairs)


def test_every_section_has_codes_and_a_title() -> None:
    assert set(SECTION_TITLES) == set(Section)
    assert sum(len(in_section(section)) for section in Section) == len(CODES)
    assert {entry.key for entry in in_section(Section.DATING)} >= {"lmp", "edd", "edd_lmp", "edd_ultrasound"}


def test_the_ultrasounds_and_nipt_are_ordered_not_observed() -> None:
    ordered = {key for key, entry in CODES.items() if entry.resource == "ServiceRequest"}
    assert ordered == {"early_ultrasound", "routine_ultrasound", "nipt"}


def test_the_issue_s_named_codes() -> None:
    named = {
        "lmp": "8665-2",
        "edd_lmp": "11779-6",
        "edd_ultrasound": "11781-2",
        "edd": "11778-8",
        "ga": "18185-9",
        "ga_lmp": "11885-1",
        "gravida": "11996-6",
        "para": "11977-6",
        "weight": "29463-7",
        "bp": "85354-9",
        "bp_systolic": "8480-6",
        "bp_diastolic": "8462-4",
        "hb": "718-7",
    }
    assert {key: clinical(key).code for key in named} == named


def test_an_unknown_key_or_coding() -> None:
    with pytest.raises(KeyError):
        clinical("no-such-key")
    assert key_of({"system": LOINC, "code": "0000-0"}) is None
    assert key_of({}) is None
