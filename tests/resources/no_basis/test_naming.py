"""The naming-system table and the checks of the non-personal identifiers, table driven."""

from __future__ import annotations

import pytest

from app.resources.no_basis import identifiers as ids
from app.resources.no_basis.naming import ALIASES, BY_SYSTEM, NAMING_SYSTEMS

# Synthetic organisation numbers with valid mod-11 check digits (weights 3 2 7 6 5 4 3 2).
ORGNR = "311900412"


@pytest.mark.parametrize(
    ("system", "value", "expected"),
    [
        (ids.ORGNR_SYSTEM, ORGNR, None),
        (ids.ORGNR_SYSTEM, "310999997", None),
        (ids.ORGNR_SYSTEM, "311900413", "has a wrong check digit"),
        (ids.ORGNR_SYSTEM, "31190041", "must be 9 digits"),
        (ids.ORGNR_SYSTEM, "311 900 412", "must be 9 digits"),
        (ids.ORGNR_SYSTEM, "NO311900412", "must be 9 digits"),
        (ids.HPR_SYSTEM, "9100001", None),
        (ids.HPR_SYSTEM, "123456789", None),
        (ids.HPR_SYSTEM, "1234567890", "must be 1 to 9 digits"),
        (ids.HPR_SYSTEM, "91OO001", "must be 1 to 9 digits"),
        (ids.HERID_SYSTEM, "8094233", None),
        (ids.HERID_SYSTEM, "80942-33", "must be digits only"),
        (ids.RESH_SYSTEM, "4001031", None),
        (ids.RESH_SYSTEM, "RESH4001031", "must be digits only"),
        (ids.DUF_SYSTEM, "201412345601", None),
        (ids.DUF_SYSTEM, "20141234560", "must be 12 digits"),
        (ids.DUF_SYSTEM, "2014-1234560", "must be 12 digits"),
        (ids.FHN_SYSTEM, "81234567802", None),
        (ids.FHN_SYSTEM, "13817210036", "must start with 8 or 9"),
        (ids.FNR_SYSTEM, "13817210036", None),
        (ids.DNR_SYSTEM, "41819010186", None),
    ],
)
def test_value_checks(system: str, value: str, expected: str | None) -> None:
    assert BY_SYSTEM[system].check(value) == expected


def test_aliases_point_at_the_oids() -> None:
    assert ALIASES == {
        "http://hl7.no/fhir/NamingSystem/FNR": ids.FNR_SYSTEM,
        "http://hl7.no/fhir/NamingSystem/DNR": ids.DNR_SYSTEM,
        "http://hl7.no/fhir/NamingSystem/FHNR": ids.FHN_SYSTEM,
        "http://hl7.no/fhir/NamingSystem/HPR": ids.HPR_SYSTEM,
        "http://hl7.no/fhir/NamingSystem/DUFN": ids.DUF_SYSTEM,
        "http://hl7.no/fhir/NamingSystem/RSH": ids.RESH_SYSTEM,
        "http://hl7.no/fhir/NamingSystem/HERid": ids.HERID_SYSTEM,
        "http://nhn.no/fhir/NamingSystem/her-id": ids.HERID_SYSTEM,
    }
    assert all(ns.system.startswith("urn:oid:2.16.578.1.12.4.1.") for ns in NAMING_SYSTEMS)
    assert len(BY_SYSTEM) == len(NAMING_SYSTEMS)


def test_organisation_numbers_keep_their_old_helpers() -> None:
    assert ids.has_valid_orgnr("991000003")
    assert not ids.has_valid_orgnr("991000004")
    assert ids.orgnr_check_digit(ORGNR[:8]) == int(ORGNR[8])
