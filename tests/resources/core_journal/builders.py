"""Resources the core journal's tests write: allergies and conditions with synthetic content."""

from __future__ import annotations

from typing import Any

SNOMED = "http://snomed.info/sct"
PENICILLIN = {"system": SNOMED, "code": "764146007", "display": "Penicillin"}
PEANUT = {"system": SNOMED, "code": "256349002", "display": "Peanut"}
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ADDISON = {"system": ICD10, "code": "E27.1", "display": "Addisons sykdom"}


def allergy(
    substance: dict[str, str], criticality: str = "high", patient: str = "kari", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "criticality": criticality,
        "code": {"coding": [substance], "text": substance["display"]},
        "patient": {"reference": f"Patient/{patient}"},
        **extra,
    }


def condition(code: dict[str, str], patient: str = "kari") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": {"coding": [code], "text": code["display"]},
        "subject": {"reference": f"Patient/{patient}"},
    }


PACEMAKER = {"system": SNOMED, "code": "14106009", "display": "Cardiac pacemaker"}
DIALYSIS = {"system": SNOMED, "code": "265764009", "display": "Renal dialysis"}
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"


def implant(kind: dict[str, str], patient: str = "kari") -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "status": "active",
        "type": {"coding": [kind], "text": kind["display"]},
        "patient": {"reference": f"Patient/{patient}"},
    }


def treatment(code: dict[str, str], status: str = "in-progress", patient: str = "kari") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": status,
        "code": {"coding": [code], "text": code["display"]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def alert(text: str, category: str = "safety", patient: str = "kari") -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "status": "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": category}]}],
        "code": {"text": text},
        "subject": {"reference": f"Patient/{patient}"},
    }
