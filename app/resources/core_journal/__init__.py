"""The core journal (kjernejournal) pack: which content counts as core-journal content.

A patient's reservation against the core journal hides this content from personnel (except entries their
own organisation wrote). Kjernejournal holds critical information (allergies, critical conditions and
warnings), diagnoses, medicines and vaccines.
"""

from __future__ import annotations

CORE_JOURNAL_TYPES = frozenset(
    {
        "AllergyIntolerance",
        "Condition",
        "Flag",
        "Immunization",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
    }
)
