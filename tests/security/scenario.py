"""A small synthetic care setting for the access-policy tests (every person and number is made up).

- Kari (adult) has a regular GP at Fjordvik legekontor and an ongoing hospital stay at Nordfjord sykehus.
- Ola (6) is Kari's son; Tuva (15) is Kari's daughter (over 12: no default parental access).
- Nils is Kari's neighbour: no care relation with anyone here.
- Kari has blocked one hospital document (sperring) from the hospital.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    orgnr_check_digit,
    synthetic_fnr,
)
from app.security.facts import BLOCK, CONSENT_CATEGORY_SYSTEM, PROXY, RESERVATION
from tests.fhir.bundles import put_each


def orgnr(first_eight: str) -> str:
    check = orgnr_check_digit(first_eight)
    assert check is not None
    return f"{first_eight}{check}"


GP_OFFICE_ORGNR = orgnr("91234568")
HOSPITAL_ORGNR = orgnr("98765432")
OTHER_CLINIC_ORGNR = orgnr("97531246")
GP_HPR, HOSPITAL_HPR, OTHER_HPR = "1000001", "2000002", "3000003"
KARI_FNR = synthetic_fnr(14, 3, 1985, 101)
OLA_FNR = synthetic_fnr(2, 6, date.today().year - 6, 501)
TUVA_FNR = synthetic_fnr(9, 1, date.today().year - 15, 502)
NILS_FNR = synthetic_fnr(30, 11, 1979, 111)


def ref(target: str) -> dict[str, str]:
    return {"reference": target}


def _org(res_id: str, name: str, number: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": res_id,
        "identifier": [{"system": ORGNR_SYSTEM, "value": number}],
        "name": name,
    }


def _practitioner(res_id: str, hpr: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": res_id,
        "identifier": [{"system": HPR_SYSTEM, "value": hpr}],
        "name": [{"family": family, "given": ["Test"]}],
    }


def _patient(res_id: str, fnr: str, given: str, birth: str, gp: str | None) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": res_id,
        "identifier": [{"system": FNR_SYSTEM, "value": fnr}],
        "name": [{"family": "Fjordvik", "given": [given]}],
        "birthDate": birth,
    }
    if gp:
        patient["generalPractitioner"] = [ref(gp)]
    return patient


def _observation(res_id: str, patient: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"text": text},
        "subject": ref(f"Patient/{patient}"),
        **extra,
    }


def consent(res_id: str, patient: str, category: str, **provision: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": res_id,
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": CONSENT_CATEGORY_SYSTEM, "code": category}]}],
        "patient": ref(f"Patient/{patient}"),
        "provision": {"type": "deny" if category != PROXY else "permit", **provision},
    }


def scenario() -> list[dict[str, Any]]:
    year = date.today().year
    return [
        _org("gp-office", "Fjordvik legekontor", GP_OFFICE_ORGNR),
        _org("hospital", "Nordfjord sykehus", HOSPITAL_ORGNR),
        _org("other-clinic", "Naboklinikken", OTHER_CLINIC_ORGNR),
        _practitioner("gp", GP_HPR, "Lege"),
        _practitioner("hospital-doctor", HOSPITAL_HPR, "Overlege"),
        _practitioner("other-doctor", OTHER_HPR, "Nabolege"),
        {
            "resourceType": "PractitionerRole",
            "id": "gp-role",
            "active": True,
            "practitioner": ref("Practitioner/gp"),
            "organization": ref("Organization/gp-office"),
        },
        _patient("kari", KARI_FNR, "Kari", "1985-03-14", "PractitionerRole/gp-role"),
        _patient("ola", OLA_FNR, "Ola", f"{year - 6}-06-02", "Organization/gp-office"),
        _patient("tuva", TUVA_FNR, "Tuva", f"{year - 15}-01-09", "Organization/gp-office"),
        _patient("nils", NILS_FNR, "Nils", "1979-11-30", None),
        *(
            {
                "resourceType": "RelatedPerson",
                "id": f"kari-parent-of-{child}",
                "active": True,
                "patient": ref(f"Patient/{child}"),
                "identifier": [{"system": FNR_SYSTEM, "value": KARI_FNR}],
                "relationship": [
                    {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                        ]
                    }
                ],
            }
            for child in ("ola", "tuva")
        ),
        {
            "resourceType": "Encounter",
            "id": "kari-admission",
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": ref("Patient/kari"),
            "serviceProvider": ref("Organization/hospital"),
        },
        {
            "resourceType": "DocumentReference",
            "id": "kari-psych-note",
            "status": "current",
            "subject": ref("Patient/kari"),
            "context": {"encounter": [ref("Encounter/kari-admission")]},
            "content": [{"attachment": {"contentType": "text/plain", "title": "Samtalenotat"}}],
        },
        {
            "resourceType": "DocumentReference",
            "id": "kari-discharge",
            "status": "current",
            "subject": ref("Patient/kari"),
            "content": [{"attachment": {"contentType": "text/plain", "title": "Epikrise"}}],
        },
        _observation("kari-bp", "kari", "Blodtrykk", derivedFrom=[ref("DocumentReference/kari-psych-note")]),
        _observation("ola-temp", "ola", "Temperatur"),
        _observation("tuva-temp", "tuva", "Temperatur"),
        _observation("nils-bp", "nils", "Blodtrykk"),
        consent(
            "kari-blocks-note",
            "kari",
            BLOCK,
            actor=[
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": ref("Organization/hospital"),
                }
            ],
            data=[{"meaning": "instance", "reference": ref("DocumentReference/kari-psych-note")}],
        ),
    ]


def reservation(patient: str) -> dict[str, Any]:
    return consent(f"{patient}-reserves", patient, RESERVATION)


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return put_each(*resources)
