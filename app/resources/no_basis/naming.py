"""The Norwegian identifier systems this pack knows: canonical OID, alternative URIs, label and value check.

Alternative URIs are normalised to the OID (the preferred uniqueId of every HL7 Norway NamingSystem), so
that stored and indexed identifiers have one system each. Sources, read in the public repositories:

Verified in HL7 Norway's published NamingSystems (HL7Norway/basisprofiler-r4 and the no-basis 2.2.x build
in HL7Norway/basisprofiler-r4-fsh; uri preferred=false, oid preferred=true):
  http://hl7.no/fhir/NamingSystem/FNR   -> urn:oid:2.16.578.1.12.4.1.4.1   fødselsnummer
  http://hl7.no/fhir/NamingSystem/DNR   -> urn:oid:2.16.578.1.12.4.1.4.2   D-nummer
  http://hl7.no/fhir/NamingSystem/FHNR  -> urn:oid:2.16.578.1.12.4.1.4.3   felles hjelpenummer (not /FHN)
  http://hl7.no/fhir/NamingSystem/HPR   -> urn:oid:2.16.578.1.12.4.1.4.4   HPR-nummer
  http://hl7.no/fhir/NamingSystem/DUFN  -> urn:oid:2.16.578.1.12.4.1.4.5   DUF-nummer (not /DUF)
Found only in draft HL7 Norway material (status draft, or marked "uncertain practice"):
  http://hl7.no/fhir/NamingSystem/RSH     -> urn:oid:2.16.578.1.12.4.1.4.102  RESH-id
  http://hl7.no/fhir/NamingSystem/HERid   -> urn:oid:2.16.578.1.12.4.1.2      HER-id (no-basis-her-id 0.6.0)
  http://nhn.no/fhir/NamingSystem/her-id  -> urn:oid:2.16.578.1.12.4.1.2      HER-id (early basisprofiler draft)
Not found anywhere, so not mapped: .../ENH (organisasjonsnummer is always the OID ...4.1.4.101 in
no-basis-Organization), .../FHN, .../DUF, .../HNR (an H-nummer has no national system; see hook.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.resources.no_basis import identifiers as ids
from app.resources.no_basis.personal import (
    D_NUMMER,
    FODSELSNUMMER,
    WRONG_CHECK_DIGIT,
    fh_number_problem,
    personal_number_problem,
)

Check = Callable[[str], str | None]


@dataclass(frozen=True)
class NamingSystem:
    system: str  # the canonical urn:oid
    label: str  # named in error messages
    aliases: tuple[str, ...]
    check: Check


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def orgnr_problem(value: str) -> str | None:
    if len(value) != 9 or not _digits(value):
        return "must be 9 digits"
    return None if ids.has_valid_orgnr(value) else WRONG_CHECK_DIGIT


def hpr_problem(value: str) -> str | None:
    return None if _digits(value) and len(value) <= 9 else "must be 1 to 9 digits"


def digits_problem(value: str) -> str | None:
    return None if _digits(value) else "must be digits only"


def duf_problem(value: str) -> str | None:
    # UDI publishes no check-digit rule that we could verify, so only the documented shape is checked.
    return None if _digits(value) and len(value) == 12 else "must be 12 digits"


NAMING_SYSTEMS: tuple[NamingSystem, ...] = (
    NamingSystem(
        ids.FNR_SYSTEM,
        "fødselsnummer",
        ("http://hl7.no/fhir/NamingSystem/FNR",),
        lambda v: personal_number_problem(v, FODSELSNUMMER),
    ),
    NamingSystem(
        ids.DNR_SYSTEM,
        "D-nummer",
        ("http://hl7.no/fhir/NamingSystem/DNR",),
        lambda v: personal_number_problem(v, D_NUMMER),
    ),
    NamingSystem(
        ids.FHN_SYSTEM, "felles hjelpenummer", ("http://hl7.no/fhir/NamingSystem/FHNR",), fh_number_problem
    ),
    NamingSystem(ids.HPR_SYSTEM, "HPR-nummer", ("http://hl7.no/fhir/NamingSystem/HPR",), hpr_problem),
    NamingSystem(ids.DUF_SYSTEM, "DUF-nummer", ("http://hl7.no/fhir/NamingSystem/DUFN",), duf_problem),
    NamingSystem(ids.ORGNR_SYSTEM, "organisasjonsnummer", (), orgnr_problem),
    NamingSystem(ids.RESH_SYSTEM, "RESH-id", ("http://hl7.no/fhir/NamingSystem/RSH",), digits_problem),
    NamingSystem(
        ids.HERID_SYSTEM,
        "HER-id",
        ("http://hl7.no/fhir/NamingSystem/HERid", "http://nhn.no/fhir/NamingSystem/her-id"),
        digits_problem,
    ),
)

BY_SYSTEM: dict[str, NamingSystem] = {ns.system: ns for ns in NAMING_SYSTEMS}
ALIASES: dict[str, str] = {alias: ns.system for ns in NAMING_SYSTEMS for alias in ns.aliases}
