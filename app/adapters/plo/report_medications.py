"""A report's medicines (epj3:Legemiddelinfo, ForenkletForskrivning) as MedicationStatements and back
(pure): a top-level Legemiddelinfo is kept only as its MedicationStatement, so a medicine changed there is
what a report written from FHIR says.

| Legemiddelinfo | MedicationStatement |
| --- | --- |
| Navn, Styrke (V U) | `medicationCodeableConcept.text` "Navn V U" for readers; `ext:plo-medication` `name`, `strength` |
| Atc | `medicationCodeableConcept.coding` |
| DosVeiledEnkel | `dosage.text` |
| Bruk | `category` |
| DoseringStarttidspunkt, DoseringSluttidspunkt | `effectivePeriod` |
| ForenkletForskrivning/Merknad | `note` |
| Legemiddelform | `ext:plo-medication-form` |
| BruksomradeTekst | `reasonCode.text` |
| InngaarIMultidose, StatusTilForskrivningen | `ext:plo-medication` `multidose`, `status` (CodeableConcept) |
| ReseptId, Nr, GeneriskNavn, SkalIkkeTasSammenMedAnnetLegemiddel, komponentID, m1:informasjonskategori | `ext:plo-medication` `prescriptionId`, `number`, `genericName`, `notWithOther`, `componentId`, `category` |
| Forskriver | `ext:plo-medication` `prescriber` (its elements, `ext:plo-field`) |
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.plo import fields
from app.adapters.plo.model import Medication

Json = dict[str, Any]
EXT_MEDICATION = f"{f.SD}/plo-medication"
EXT_FORM = f"{f.SD}/plo-medication-form"
_STRINGS = (
    ("name", "name"),
    ("strength", "strength"),
    ("prescriptionId", "prescription_id"),
    ("number", "number"),
    ("genericName", "generic_name"),
    ("componentId", "component_id"),
    ("category", "category"),
)


def _moment(value: datetime | date) -> str:
    return f.fhir_datetime(value) if isinstance(value, datetime) else value.isoformat()


def _from_moment(value: Any) -> datetime | date | None:
    if not isinstance(value, str):
        return None
    return f.from_fhir_datetime(value) if "T" in value else date.fromisoformat(value)


def statement(m: Medication, status: str) -> Json:
    """The MedicationStatement of a medicine (subject, source, identifier are the caller's)."""
    parts = [f.ext(url, "String", getattr(m, attr)) for url, attr in _STRINGS if getattr(m, attr) is not None]
    parts += [
        f.ext(url, "CodeableConcept", f.cc(c))
        for url, c in (("multidose", m.multidose), ("status", m.status))
        if c
    ]
    if m.not_with_other is not None:
        parts.append(f.ext("notWithOther", "Boolean", m.not_with_other))
    if m.prescriber is not None:
        parts.append({**fields.to_ext(m.prescriber), "url": "prescriber"})
    extensions = [f.complex_ext(EXT_MEDICATION, parts)] if parts else []
    if m.form is not None:
        extensions.append(f.ext(EXT_FORM, "CodeableConcept", f.cc(m.form)))
    ms: Json = {"resourceType": "MedicationStatement", "status": status}
    if extensions:
        ms["extension"] = extensions
    concept: Json = {"text": " ".join(v for v in (m.name, m.strength) if v) or "Ukjent legemiddel"}
    if m.atc is not None:
        concept["coding"] = [f.coding(m.atc)]
    ms["medicationCodeableConcept"] = concept
    if m.use is not None:
        ms["category"] = f.cc(m.use)
    period = {k: _moment(v) for k, v in (("start", m.start), ("end", m.end)) if v is not None}
    if period:
        ms["effectivePeriod"] = period
    if m.usage_text is not None:
        ms["reasonCode"] = [{"text": m.usage_text}]
    if m.dosage_text:
        ms["dosage"] = [{"text": m.dosage_text}]
    if m.remark is not None:
        ms["note"] = [{"text": m.remark}]
    return ms


def medication_from(ms: Json) -> Medication:
    """A medicine from its MedicationStatement."""
    ext = next(iter(f.exts(ms, EXT_MEDICATION)), None) or {}
    parts = {e.get("url"): e for e in ext.get("extension", [])}

    def text(url: str) -> str | None:
        value = parts.get(url, {}).get("valueString")
        return value if isinstance(value, str) else None

    def code(url: str) -> Any:
        return f.opt_coded(parts.get(url, {}).get("valueCodeableConcept"))

    codings = (ms.get("medicationCodeableConcept") or {}).get("coding") or []
    period = ms.get("effectivePeriod") or {}
    dosage = (ms.get("dosage") or [{}])[0]
    reasons = ms.get("reasonCode") or []
    notes = ms.get("note") or []
    prescriber = parts.get("prescriber")
    return Medication(
        name=text("name"),
        form=f.opt_coded(f.ext_value(ms, EXT_FORM, "CodeableConcept")),
        strength=text("strength"),
        dosage_text=dosage.get("text"),
        use=f.opt_coded(ms.get("category")),
        start=_from_moment(period.get("start")),
        remark=notes[0].get("text") if notes else None,
        multidose=code("multidose"),
        end=_from_moment(period.get("end")),
        status=code("status"),
        prescription_id=text("prescriptionId"),
        prescriber=None if prescriber is None else fields.from_ext(prescriber),
        usage_text=reasons[0].get("text") if reasons else None,
        number=text("number"),
        generic_name=text("genericName"),
        atc=None if not codings else f.coded({"coding": codings[:1]}),
        not_with_other=parts.get("notWithOther", {}).get("valueBoolean"),
        component_id=text("componentId"),
        category=text("category"),
    )
