"""Small synthetic FHIR resources for the tests (synthetic Norwegian identities only)."""

from __future__ import annotations

from typing import Any

from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def patient(
    family: str = "Nordmann", given: str = "Kari", fnr: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": FNR_SYSTEM, "value": fnr or synthetic_fnr(13, 9, 1972, 100)}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1972-09-13",
    }
    body.update(extra)
    return body


def observation(subject: str = "Patient/example") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
