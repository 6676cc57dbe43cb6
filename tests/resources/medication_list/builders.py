"""Synthetic MedicationStatements for the medication list tests (made-up FEST ids and varenumre)."""

from __future__ import annotations

from typing import Any

from app.resources.medication_list.codes import (
    ATC_SYSTEM,
    FEST_LEGEMIDDEL_SYSTEM,
    FEST_VARENUMMER_SYSTEM,
    STRENGTH_EXTENSION,
)


def statement(
    text: str,
    *,
    fest: str | None = None,
    varenr: str | None = None,
    atc: str | None = None,
    strength: tuple[float, str] | None = None,
    dose: str = "1 tablett morgen",
    dose_value: float | None = 1,
    frequency: int = 1,
    patient: str = "kari",
    **extra: Any,
) -> dict[str, Any]:
    coding = [
        {"system": system, "code": code}
        for system, code in (
            (FEST_LEGEMIDDEL_SYSTEM, fest),
            (FEST_VARENUMMER_SYSTEM, varenr),
            (ATC_SYSTEM, atc),
        )
        if code is not None
    ]
    concept: dict[str, Any] = {"text": text, **({"coding": coding} if coding else {})}
    dosage: dict[str, Any] = {
        "text": dose,
        "timing": {"repeat": {"frequency": frequency, "period": 1, "periodUnit": "d"}},
    }
    if dose_value is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": dose_value, "unit": "tablett"}}]
    result: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{patient}"},
        "dosage": [dosage],
        **extra,
    }
    if strength is not None:
        value, unit = strength
        result["extension"] = [{"url": STRENGTH_EXTENSION, "valueQuantity": {"value": value, "unit": unit}}]
    return result


# A few synthetic medicines (ATC codes are real classes; FEST ids and varenumre are made up).
def metformin(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"fest": "ID_TEST-METFORMIN-500", "atc": "A10BA02", "strength": (500, "mg")}
    return statement("Metformin tablett 500 mg", **(args | kw))


def simvastatin(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"atc": "C10AA01", "strength": (20, "mg"), "dose": "1 tablett kveld"}
    return statement("Simvastatin tablett 20 mg", **(args | kw))


def paracet(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"varenr": "999901", "atc": "N02BE01", "dose": "1-2 tabletter ved behov"}
    return statement("Paracetamol tablett 500 mg", **(args | kw))


def tran(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"dose": "5 ml daglig", "dose_value": None}
    return statement("Tran, flytende", **(args | kw))


def in_multidose(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement marked as packed in multidose."""
    from app.resources.medication_list.codes import MULTIDOSE_EXTENSION

    mark = {"url": MULTIDOSE_EXTENSION, "valueBoolean": True}
    return {**statement, "extension": [*statement.get("extension", []), mark]}
