"""The medication list journey: reconciliation (legemiddelsamstemming) of the patient the first journey
registered, by a system client (a hospital's EHR integration): the shared list, a diff that writes
nothing, an apply guarded by the list's version, and a stale apply refused with the fresh list."""

from __future__ import annotations

from typing import Any

from app.postman.builders import check, request
from app.resources.medication_list.codes import ATC_SYSTEM, FEST_LEGEMIDDEL_SYSTEM, STRENGTH_EXTENSION

_LIST = "/Patient/{{patientId}}/$medication-list"
_RECONCILE = "/Patient/{{patientId}}/$reconcile"
_ETAG = 'pm.response.headers.get("ETag")'
# The answer's changes as [kind, key] pairs.
_CHANGES = (
    'body.parameter.filter(p => p.name === "change").map(p => p.part.find(x => x.name === "kind").valueCode)'
)


def _metformin(dose: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "text": "Metformin tablett 500 mg",
            "coding": [
                {"system": FEST_LEGEMIDDEL_SYSTEM, "code": "ID_POSTMAN-METFORMIN-500"},  # made up
                {"system": ATC_SYSTEM, "code": "A10BA02"},
            ],
        },
        "extension": [{"url": STRENGTH_EXTENSION, "valueQuantity": {"value": 500, "unit": "mg"}}],
        "subject": {"reference": "Patient/{{patientId}}"},
        "dosage": [{"text": dose, "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}],
    }


def _reconcile(dose: str, apply: bool) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "medication", "resource": _metformin(dose)},
            {"name": "apply", "valueBoolean": apply},
            {"name": "reason", "valueString": "Samstemming ved innleggelse"},
        ],
    }


def medication_journey() -> list[dict[str, Any]]:
    return [
        request(
            "The shared list, still empty",
            "GET",
            _LIST,
            check(
                200,
                "Bundle",
                ("the list first", "body.entry[0].resource.resourceType", '"List"'),
                ("no version yet", _ETAG, "'W/\"0\"'"),
            ),
        ),
        request(
            "Reconcile the hospital's list: the differences only",
            "POST",
            _RECONCILE,
            check(200, "Parameters", ("metformin is new", _CHANGES, '["added"]')),
            body=_reconcile("1 tablett morgen og kveld", apply=False),
        ),
        request(
            "Apply it, guarded by the list's version",
            "POST",
            _RECONCILE,
            check(
                200,
                "Parameters",
                ("a new version", f"{_ETAG} !== 'W/\"0\"'", "true"),
                save={"listVersion": _ETAG},
            ),
            body=_reconcile("1 tablett morgen og kveld", apply=True),
            headers={"If-Match": 'W/"0"'},
        ),
        request(
            "The list now holds it",
            "GET",
            _LIST,
            check(
                200,
                "Bundle",
                ("the same version", _ETAG, 'pm.collectionVariables.get("listVersion")'),
                (
                    "metformin in use",
                    "body.entry.slice(1).map(e => e.resource.medicationCodeableConcept.text)",
                    '["Metformin tablett 500 mg"]',
                ),
            ),
        ),
        request(
            "A stale apply is refused with the fresh list",
            "POST",
            _RECONCILE,
            check(
                412,
                "Bundle",
                ("the fresh list", "body.entry[0].resource.resourceType", '"List"'),
                ("its version", _ETAG, 'pm.collectionVariables.get("listVersion")'),
            ),
            body=_reconcile("1 tablett morgen", apply=True),
            headers={"If-Match": 'W/"0"'},
        ),
    ]
