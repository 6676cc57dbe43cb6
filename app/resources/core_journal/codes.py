"""The pack's code system and tags: the categories of critical information as data, mapped to the six
main categories of Kjernejournal's Kritisk informasjon API (see README.md), and the extension that names
each source of a core-journal entry."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

BASE = "http://helsebro.no/fhir"
CATEGORY_SYSTEM = f"{BASE}/CodeSystem/core-journal-category"
TAG_SYSTEM = f"{BASE}/CodeSystem/core-journal-tag"
ENTRY_TAG = {"system": TAG_SYSTEM, "code": "entry", "display": "Kjernejournal-oppføring"}
# What the audit records a $summary's reads under (RequestContext.service): the patient's access log
# tells a core-journal lookup from a read of the EPJ's own records.
CORE_JOURNAL_SERVICE = ("core-journal", "Kjernejournal")
SOURCE_EXTENSION = f"{BASE}/StructureDefinition/core-journal-source"
# meta.source of an entry: the pack keeps it (each source's own system is in its source extension)
ENTRY_SOURCE = "urn:helsebro:core-journal"


class CriticalCategory(StrEnum):
    """Kjernejournal's main categories of critical information (Kritisk informasjon API, NHN)."""

    HYPERSENSITIVITY = "overfolsomhet"  # Overfølsomhetsreaksjoner: drug reactions, critical allergies
    ANAESTHESIA = "anestesi"  # Komplikasjoner ved anestesi
    CRITICAL_CONDITION = "kritisk-tilstand"  # Kritiske medisinske tilstander
    TREATMENT_IMPLANT = "behandling-implantat"  # Pågående behandlinger og implantater
    INFECTION = "smitte"  # Smitte
    OTHER = "annen"  # Annen kritisk informasjon (unstructured)


DISPLAY: dict[CriticalCategory, str] = {
    CriticalCategory.HYPERSENSITIVITY: "Overfølsomhetsreaksjon",
    CriticalCategory.ANAESTHESIA: "Komplikasjon ved anestesi",
    CriticalCategory.CRITICAL_CONDITION: "Kritisk medisinsk tilstand",
    CriticalCategory.TREATMENT_IMPLANT: "Pågående behandling eller implantat",
    CriticalCategory.INFECTION: "Smitte",
    CriticalCategory.OTHER: "Annen kritisk informasjon",
}

# The FHIR resource type each category is recorded as (the mapping; Device and Procedure for
# implants and treatments, Flag for the unstructured rest).
RESOURCE_TYPE: dict[CriticalCategory, str] = {
    CriticalCategory.HYPERSENSITIVITY: "AllergyIntolerance",
    CriticalCategory.ANAESTHESIA: "Condition",
    CriticalCategory.CRITICAL_CONDITION: "Condition",
    CriticalCategory.TREATMENT_IMPLANT: "Procedure",
    CriticalCategory.INFECTION: "Condition",
    CriticalCategory.OTHER: "Flag",
}


def category_coding(category: CriticalCategory) -> dict[str, Any]:
    return {"system": CATEGORY_SYSTEM, "code": str(category), "display": DISPLAY[category]}


def is_entry(resource: Mapping[str, Any]) -> bool:
    """The pack's own core-journal entry (tagged), as opposed to a local system's source resource."""
    return any(
        t.get("system") == TAG_SYSTEM and t.get("code") == ENTRY_TAG["code"]
        for t in resource.get("meta", {}).get("tag", [])
        if isinstance(t, dict)
    )


def code_system() -> dict[str, Any]:
    """The categories as a FHIR CodeSystem resource (for documentation and terminology loading)."""
    return {
        "resourceType": "CodeSystem",
        "id": "core-journal-category",
        "url": CATEGORY_SYSTEM,
        "name": "CoreJournalCategory",
        "title": "Kategorier for kritisk informasjon i kjernejournal",
        "status": "draft",
        "content": "complete",
        "concept": [{"code": str(c), "display": DISPLAY[c]} for c in CriticalCategory],
    }
