"""Norwegian identifier systems (HL7 Norway no-basis) and their mod-11 check digits.

Check digits of fødselsnummer / D-nummer (Skatteetaten): k1 uses the weights 3 7 6 1 8 9 4 5 2 on the
first nine digits, k2 the weights 5 4 3 2 7 6 5 4 3 2 on the first ten. Put differently, the weighted sum
including the check digit itself (weight 1) must leave a remainder of 0 modulo 11. From 1 January 2032
Skatteetaten issues numbers whose k1 sum may leave a remainder of 0, 1, 2 or 3 (k2 is unchanged), and
systems must accept both (Skatteetaten/folkeregisteret-api-dokumentasjon, "Nytt fødselsnummer fra 2032").
"""

from __future__ import annotations

FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"  # fødselsnummer
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"  # D-nummer
FHN_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.3"  # felles hjelpenummer (Norsk helsenett)
HPR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.4"  # HPR-nummer (health personnel register)
DUF_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.5"  # DUF-nummer (UDI)
ORGNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.101"  # organisasjonsnummer (Enhetsregisteret)
RESH_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.102"  # RESH-id
HERID_SYSTEM = "urn:oid:2.16.578.1.12.4.1.2"  # HER-id (adresseregisteret)

# A local H-nummer has no national system: no-basis marks it by Identifier.type (Volven 8327, code HNR).
ID_TYPE_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.8327"
HNR_TYPE_CODE = "HNR"

MUNICIPALITY_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.3402"  # kommunenummer (Volven 3402)

_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_ORGNR = (3, 2, 7, 6, 5, 4, 3, 2)
# k1 remainders the 2032 rule accepts (0 alone is the classic rule)
_K1_REMAINDERS_2032 = frozenset({0, 1, 2, 3})


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True))


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 check digit, or None when the remainder makes the number impossible."""
    check = 11 - _weighted(digits, weights) % 11
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


def k1_remainder(number: str) -> int:
    """The k1 sum of an 11-digit number including k1 itself, modulo 11: 0 under the classic rule."""
    return (_weighted(number[:9], _K1) + int(number[9])) % 11


def has_valid_personal_check_digits(number: str, allow_2032: bool = False) -> bool:
    """Both check digits of an 11-digit personal number; `allow_2032` also accepts the k1 values of the
    rule Skatteetaten applies to numbers issued from 2032."""
    if len(number) != 11 or not number.isascii() or not number.isdigit():
        return False
    accepted = _K1_REMAINDERS_2032 if allow_2032 else {0}
    if k1_remainder(number) not in accepted:
        return False
    return (_weighted(number[:10], _K2) + int(number[10])) % 11 == 0


def orgnr_check_digit(first_eight: str) -> int | None:
    return _mod11(first_eight, _ORGNR)


def has_valid_orgnr(number: str) -> bool:
    return (
        len(number) == 9
        and number.isascii()
        and number.isdigit()
        and orgnr_check_digit(number[:8]) == int(number[8])
    )


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
