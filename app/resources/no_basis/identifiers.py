"""Norwegian identifier systems (HL7 Norway no-basis) and their mod-11 check digits."""

from __future__ import annotations

FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"  # fødselsnummer
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"  # D-nummer
HPR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.4"  # HPR-nummer (health personnel register)
ORGNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.101"  # organisasjonsnummer (Enhetsregisteret)
RESH_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.102"  # RESH-id
HERID_SYSTEM = "urn:oid:2.16.578.1.12.4.1.2"  # HER-id (adresseregisteret)

_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_ORGNR = (3, 2, 7, 6, 5, 4, 3, 2)


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 check digit, or None when the remainder makes the number impossible."""
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def personal_number_check_digits(first_nine: str) -> str | None:
    """The two check digits of a fødselsnummer / D-nummer from its first nine digits (None: no valid number)."""
    k1 = _mod11(first_nine, _K1)
    if k1 is None:
        return None
    k2 = _mod11(first_nine + str(k1), _K2)
    return None if k2 is None else f"{k1}{k2}"


def has_valid_personal_check_digits(number: str) -> bool:
    if len(number) != 11 or not number.isdigit():
        return False
    return personal_number_check_digits(number[:9]) == number[9:]


def orgnr_check_digit(first_eight: str) -> int | None:
    return _mod11(first_eight, _ORGNR)


def has_valid_orgnr(number: str) -> bool:
    return len(number) == 9 and number.isdigit() and orgnr_check_digit(number[:8]) == int(number[8])


def synthetic_fnr(day: int, month: int, year: int, serial: int) -> str:
    """A synthetic test fødselsnummer (month + 80, as in Skatteetaten's Tenor test data) with valid check digits.

    Tries serials upwards from `serial` until the check digits exist; raises if none in range does.
    """
    for individual in range(serial, 1000):
        first_nine = f"{day:02d}{month + 80:02d}{year % 100:02d}{individual:03d}"
        digits = personal_number_check_digits(first_nine)
        if digits is not None:
            return first_nine + digits
    raise ValueError("no valid synthetic fødselsnummer in the serial range")
