"""The systems, codes and extensions of the medication list pack, as data (README.md cites the sources)."""

from __future__ import annotations

from enum import StrEnum

BASE = "http://helsebro.no/fhir"

# The one List per patient: its code, and the identifier that finds it (value: the Patient id).
LIST_CODE_SYSTEM = f"{BASE}/CodeSystem/medication-list"
LIST_CODE = "legemiddelliste"
LIST_IDENTIFIER_SYSTEM = f"{BASE}/NamingSystem/medication-list"

# Medicine coding, as the national services code it. This module owns the systems: the e-resept adapter
# (app/adapters/eresept/_fhir_medicine.py) imports them. The FEST product ids are the LMDI IG's
# NamingSystems (provisional until no-basis defines them); a package's FEST id and its varenummer are two
# different identifiers (the LMDI IG and the Nordic ePI IG keep them apart), so the varenummer has a
# system of its own (local: no published URI found).
ATC_SYSTEM = "http://www.whocc.no/atc"
FEST_LEGEMIDDEL_SYSTEM = "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare"  # LegemiddelMerkevare id
FEST_PAKNING_SYSTEM = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning"  # LegemiddelPakning id
FEST_VIRKESTOFF_SYSTEM = f"{BASE}/NamingSystem/fest-legemiddel-virkestoff"  # LegemiddelVirkestoff id (local)
FEST_VARENUMMER_SYSTEM = f"{BASE}/NamingSystem/fest-varenr"  # the package's varenummer (local)
FEST_SUBSTANCE_SYSTEM = (
    f"{BASE}/NamingSystem/fest-virkestoff"  # a Virkestoff's (active substance's) id (local)
)

# Other spellings of the same systems, read as the canonical one.
SYSTEM_ALIASES: dict[str, str] = {
    "urn:oid:2.16.578.1.12.4.1.1.7180": ATC_SYSTEM,  # Volven 7180, as e-resept messages carry ATC
    "http://hl7.no/fhir/NamingSystem/festLegemiddelmerkevare": FEST_LEGEMIDDEL_SYSTEM,
    "http://hl7.no/fhir/NamingSystem/festLegemiddelMerkevare": FEST_LEGEMIDDEL_SYSTEM,
    "http://hl7.no/fhir/NamingSystem/festLegemiddelpakning": FEST_PAKNING_SYSTEM,
    "http://hl7.no/fhir/NamingSystem/festLegemiddelPakning": FEST_PAKNING_SYSTEM,
}

FREE_TEXT_EXTENSION = f"{BASE}/StructureDefinition/medication-free-text"  # valueBoolean true
STRENGTH_EXTENSION = f"{BASE}/StructureDefinition/medication-strength"  # valueQuantity

DATA_OPERATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"  # Provenance.activity


class ChangeKind(StrEnum):
    ADDED = "added"
    STOPPED = "stopped"
    CHANGED = "changed"  # with aspects dose and/or strength
    SAME = "same"


class Aspect(StrEnum):
    DOSE = "dose"
    STRENGTH = "strength"
    MULTIDOSE = "multidose"  # packed in multidose, or no longer


class KeyKind(StrEnum):
    """What paired two statements, in the order the passes try them; a change's key starts with it."""

    FEST = "fest"
    VARENR = "varenr"
    ATC = "atc"
    TEXT = "text"


def canonical_system(system: object) -> str | None:
    if not isinstance(system, str):
        return None
    return SYSTEM_ALIASES.get(system, system)


# Multidose: the responsible doctor on the List (complex: practitioner, organization, both Reference by
# identifier: HPR number, organisation number), and the mark on each statement the pharmacy packs.
MULTIDOSE_RESPONSIBLE_EXTENSION = f"{BASE}/StructureDefinition/medication-list-multidose-responsible"
MULTIDOSE_EXTENSION = f"{BASE}/StructureDefinition/medication-multidose"  # valueBoolean true
TASK_CODE_SYSTEM = f"{BASE}/CodeSystem/medication-list-task"
MULTIDOSE_PROPOSAL = "multidose-endringsforslag"  # Task.code of a proposed change to the multidose part
