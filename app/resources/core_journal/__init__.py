"""The core journal (kjernejournal) pack: which content counts as core-journal content.

A patient's reservation against the core journal hides this content from personnel (except entries their
own organisation wrote). Kjernejournal holds critical information (allergies, critical conditions and
warnings, implants and ongoing treatment), diagnoses, medicines and vaccines; the Provenance of its
entries (which source, organisation and author) and of the medication list's changes goes with them.
"""

from __future__ import annotations

CORE_JOURNAL_TYPES = frozenset(
    {
        "AllergyIntolerance",
        "Condition",
        "Device",
        "Flag",
        "Immunization",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "Procedure",
        "Provenance",
    }
)
