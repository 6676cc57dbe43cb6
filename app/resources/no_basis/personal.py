"""Checks of 11-digit Norwegian personal numbers: fødselsnummer, D-nummer, H-nummer, felles hjelpenummer.

Each check returns None for a valid number or a short problem phrase that never repeats the number (the
phrase ends up in OperationOutcomes and logs, which must not carry patient data).

Layout DDMMYYIIIKK: date of birth, individual number, two check digits. Marks added to the date:
- D-nummer: day + 40 (Skatteetaten).
- H-nummer: month + 40 (KITH-rapport 11/98, HIS 1001:2010); otherwise built like a fødselsnummer.
- Synthetic test numbers: month + 40 (Skatteetaten's older test numbers, NAV's synthetic persons) and
  month + 80 (Skatteetaten's Tenor test data), on fødselsnummer and D-nummer alike.
- Felles hjelpenummer (Norsk helsenett): first digit 8 or 9, the other nine random, the two check digits
  as in a fødselsnummer; no date.

The individual number tells the century (folkeregisterforskriften): 000-499 -> 1900s, 500-749 with year
54-99 -> 1800s, 900-999 with year 40-99 -> 1900s, 500-999 with year 00-39 -> 2000s. Other combinations
(750-899 or 500-749 with year 40-99/40-53) did not occur before 2032, but Skatteetaten's numbers from 2032
no longer encode the century, so they are not refused: for those years (40-99) every century gives the
same leap years, so the date check is exact either way.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass

from app.resources.no_basis.identifiers import has_valid_personal_check_digits

NOT_11_DIGITS = "must be 11 digits"
WRONG_CHECK_DIGIT = "has a wrong check digit"
NO_DATE = "does not start with a valid date of birth"
NEEDS_DAY_40 = "must have 40 added to the day of birth"
IS_D_NUMMER = "has 40 added to the day of birth, which marks a D-nummer"
NEEDS_MONTH_40 = "must have 40 added to the month of birth"
NOT_8_OR_9 = "must start with 8 or 9"


@dataclass(frozen=True)
class PersonalNumberKind:
    label: str
    day_offset: int  # 40 for D-nummer
    month_offsets: frozenset[int]  # 0 for real dates, 40 H-nummer or synthetic, 80 synthetic (Tenor)
    rule_2032: bool  # Skatteetaten's k1 rule for numbers issued from 2032 (fødselsnummer, D-nummer)


FODSELSNUMMER = PersonalNumberKind("fødselsnummer", 0, frozenset({0, 40, 80}), rule_2032=True)
D_NUMMER = PersonalNumberKind("D-nummer", 40, frozenset({0, 40, 80}), rule_2032=True)
# A virksomhetsintern H-nummer follows the classic rules; the 2032 rule is Skatteetaten's, not KITH's.
H_NUMMER = PersonalNumberKind("H-nummer", 0, frozenset({40}), rule_2032=False)


def _is_digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def birth_year(individual: int, year: int) -> int:
    """The four-digit year of birth from the individual number and the two-digit year."""
    if individual <= 499:
        return 1900 + year
    if individual <= 749 and year >= 54:
        return 1800 + year
    if individual >= 900 and year >= 40:
        return 1900 + year
    if year <= 39:
        return 2000 + year
    return 1900 + year  # no century under the pre-2032 rules; 1800s/1900s/2000s agree on leap years here


def is_real_date(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def personal_number_problem(value: str, kind: PersonalNumberKind) -> str | None:
    if not _is_digits(value, 11):
        return NOT_11_DIGITS
    if not has_valid_personal_check_digits(value, allow_2032=kind.rule_2032):
        return WRONG_CHECK_DIGIT
    day, month = int(value[0:2]), int(value[2:4])
    if kind.day_offset and day <= kind.day_offset:
        return NEEDS_DAY_40
    if not kind.day_offset and day > 40:
        return IS_D_NUMMER
    month_offset = month - month % 40  # 0, 40 or 80
    if month_offset not in kind.month_offsets:
        return NEEDS_MONTH_40 if kind.month_offsets == {40} else NO_DATE
    year = birth_year(int(value[6:9]), int(value[4:6]))
    if not is_real_date(year, month % 40, day - kind.day_offset):
        return NO_DATE
    return None


def fh_number_problem(value: str) -> str | None:
    """Felles hjelpenummer: 11 digits, first digit 8 or 9, classic fødselsnummer check digits."""
    if not _is_digits(value, 11):
        return NOT_11_DIGITS
    if value[0] not in "89":
        return NOT_8_OR_9
    if not has_valid_personal_check_digits(value):
        return WRONG_CHECK_DIGIT
    return None
