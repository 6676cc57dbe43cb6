"""m92:Reseptinfo (a prescription summary in RF) ↔ a MedicationRequest (M92) or a MedicationStatement on
the patient's medication list (M912), and the m274 multidose parties ↔ extensions.

What FHIR has an element for goes there (ReseptId, the product as varenummer and name, the use area;
on the MedicationRequest also the date, prescriber, quantity, reiterations, earliest dispense, RefNr); the
rest of the summary rides in one complex extension `eresept-reseptinfo`, so the summary maps back exactly.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.adapters.eresept._fhir_medicine import VARENR_SYSTEM, quantity_decimal
from app.adapters.eresept._fhir_parts import (
    ADDRESS,
    BOOLEAN,
    CODED,
    CONTACT,
    DATE,
    DECIMAL,
    IDENT,
    INTEGER,
    QUANTITY,
    TEXT,
    parts_of,
    read_parts,
)
from app.adapters.eresept.model import MultidoseDoctor, MultidosePharmacy, PrescriptionInfo
from app.adapters.eresept.to_fhir import (
    PACKAGES,
    PRESCRIPTION_ID_SYSTEM,
    REFNR_SYSTEM,
    prescription_identifier,
)
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.model import Coded, Ident
from app.resources.medication_list.codes import FREE_TEXT_EXTENSION, MULTIDOSE_RESPONSIBLE_EXTENSION
from app.resources.medication_list.diff import medicine
from app.resources.no_basis.identifiers import HPR_SYSTEM

Json = dict[str, Any]
EXT_INFO = f"{f.SD}/eresept-reseptinfo"
EXT_PHARMACY = f"{f.SD}/eresept-multidose-pharmacy"
STATUS_DISPENSABLE = "E"  # Status E "Ekspederbar": the one RF status confirmed as active


# The summary's values without a FHIR element of their own: (extension part, model field, kind).
COMMON = (
    ("status", "status", CODED),
    ("changedByPharmacist", "changed_by_pharmacist", CODED),
    ("guardianReservation", "guardian_reservation", BOOLEAN),
    ("reimbursementBasis", "reimbursement_basis", CODED),
    ("recallNote", "recall_note", TEXT),
    ("dispenserName", "dispenser_name", TEXT),
    ("productGroup", "product_group", CODED),
    ("applicationStatus", "application_status", CODED),
    ("mixtureName", "mixture_name", TEXT),
    ("dispenseMethod", "dispense_method", CODED),
    ("lastDispensed", "last_dispensed", DATE),
    ("amount", "amount", QUANTITY),
)
# What a MedicationRequest has elements (or a Patient) for and a MedicationStatement has not.
STATEMENT_ONLY = (
    ("issued", "issued", DATE),
    ("prescriberId", "prescriber_id", TEXT),
    ("prescriberName", "prescriber_name", TEXT),
    ("quantity", "quantity", DECIMAL),
    ("reiterations", "reiterations", INTEGER),
    ("earliestDispense", "earliest_dispense", DATE),
    ("reference", "reference", TEXT),
    ("givenName", "given_name", TEXT),
    ("middleName", "middle_name", TEXT),
    ("familyName", "family_name", TEXT),
    ("address", "address", ADDRESS),
    ("patient", "patient", IDENT),
)


def _info_ext(info: PrescriptionInfo, statement: bool) -> Json:
    parts = parts_of(info, COMMON + STATEMENT_ONLY if statement else COMMON)
    if info.package is not None:
        size, unit = info.package
        parts += [f.ext("packageSize", "String", size), f.ext("packageUnit", "CodeableConcept", f.cc(unit))]
    return f.complex_ext(EXT_INFO, parts)


def _medicine(info: PrescriptionInfo) -> Json:
    concept: Json = {}
    if info.item_number is not None:
        concept["coding"] = [{"system": VARENR_SYSTEM, "code": info.item_number}]
    if info.name_form_strength is not None:
        concept["text"] = info.name_form_strength
    return concept or {"extension": [f.ext(f.EXT_DAR, "Code", "unknown")]}  # a mixture or a product group


def _dosage(info: PrescriptionInfo) -> list[Json]:
    return [] if info.use_area is None else [{"patientInstruction": info.use_area}]


def info_request(info: PrescriptionInfo, patient: str) -> Json:
    """M92 Reseptinfo → MedicationRequest (the patient as the Patient at `patient`)."""
    identifiers = [prescription_identifier(info.prescription_id)]
    if info.reference is not None:
        identifiers.append({"system": REFNR_SYSTEM, "value": info.reference})
    out: Json = {
        "resourceType": "MedicationRequest",
        "identifier": identifiers,
        "status": "active" if info.status.code == STATUS_DISPENSABLE else "unknown",
        "intent": "order",
        "medicationCodeableConcept": _medicine(info),
        "subject": f.reference(patient),
        "authoredOn": info.issued.isoformat(),
        "requester": {
            "identifier": {"system": HPR_SYSTEM, "value": info.prescriber_id},
            "display": info.prescriber_name,
        },
        "extension": [_info_ext(info, statement=False)],
    }
    if dosage := _dosage(info):
        out["dosageInstruction"] = dosage
    dispense: Json = {}
    if info.earliest_dispense is not None:
        dispense["validityPeriod"] = {"start": info.earliest_dispense.isoformat()}
    if info.reiterations is not None:
        dispense["numberOfRepeatsAllowed"] = info.reiterations
    if info.quantity is not None:
        dispense["quantity"] = {"value": float(info.quantity), "unit": PACKAGES}
    if dispense:
        out["dispenseRequest"] = dispense
    return out


def info_statement(info: PrescriptionInfo, patient: str) -> Json:
    """M912 Reseptinfo → a MedicationStatement of the medication list (based on the prescription)."""
    out: Json = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "basedOn": [{"identifier": prescription_identifier(info.prescription_id)}],
        "medicationCodeableConcept": _medicine(info),
        "subject": f.reference(patient),
        "extension": [_info_ext(info, statement=True)],
    }
    if dosage := _dosage(info):
        out["dosage"] = dosage
    if medicine(out).free_text:  # the medication list's own mark: neither FEST, varenummer nor ATC
        out["extension"].append({"url": FREE_TEXT_EXTENSION, "valueBoolean": True})
    return out


def _common(resource: Json, dosage: list[Json]) -> tuple[dict[str, Any], list[Json]]:
    """The fields both resources carry alike, and the extension's parts."""
    found = f.exts(resource, EXT_INFO)
    parts: list[Json] = found[0].get("extension", []) if found else []
    holder = {"extension": parts}
    concept = resource.get("medicationCodeableConcept") or {}
    size = f.ext_value(holder, "packageSize", "String")
    unit = f.ext_value(holder, "packageUnit", "CodeableConcept")
    coding: Json = next((c for c in concept.get("coding", []) if c.get("system") == VARENR_SYSTEM), {})
    common = read_parts(parts, COMMON)
    common.update(
        status=common["status"] or Coded(),
        changed_by_pharmacist=common["changed_by_pharmacist"] or Coded(),
        guardian_reservation=bool(common["guardian_reservation"]),
        item_number=coding.get("code"),
        name_form_strength=concept.get("text"),
        use_area=(dosage or [{}])[0].get("patientInstruction"),
        package=None if size is None or unit is None else (size, f.coded(unit)),
    )
    return common, parts


def info_from_request(request: Json, patient: Json) -> PrescriptionInfo:
    common, _ = _common(request, request.get("dosageInstruction") or [])
    identifiers = request.get("identifier", [])
    dispense = request.get("dispenseRequest") or {}
    name = f.from_human_name((patient.get("name") or [None])[0])
    idents = f.idents(patient.get("identifier"))
    requester = request.get("requester") or {}
    return PrescriptionInfo(
        **common,
        prescription_id=_value(identifiers, PRESCRIPTION_ID_SYSTEM) or "",
        reference=_value(identifiers, REFNR_SYSTEM),
        issued=f.from_fhir_date(request.get("authoredOn")) or date.min,
        prescriber_id=(requester.get("identifier") or {}).get("value", ""),
        prescriber_name=requester.get("display", ""),
        quantity=quantity_decimal((dispense.get("quantity") or {}).get("value")),
        reiterations=dispense.get("numberOfRepeatsAllowed"),
        earliest_dispense=f.from_fhir_date((dispense.get("validityPeriod") or {}).get("start")),
        given_name=name.given or "",
        middle_name=name.middle,
        family_name=name.family or "",
        address=f.from_address((patient.get("address") or [None])[0]),
        patient=idents[0] if idents else None,
    )


def info_from_statement(statement: Json) -> PrescriptionInfo:
    common, parts = _common(statement, statement.get("dosage") or [])
    own = read_parts(parts, STATEMENT_ONLY)
    based_on = (statement.get("basedOn") or [{}])[0].get("identifier") or {}
    return PrescriptionInfo(
        **common,
        **{
            **own,
            "issued": own["issued"] or date.min,
            "prescriber_id": own["prescriber_id"] or "",
            "prescriber_name": own["prescriber_name"] or "",
            "given_name": own["given_name"] or "",
            "family_name": own["family_name"] or "",
        },
        prescription_id=based_on.get("value", ""),
    )


def _value(identifiers: list[Json], system: str) -> str | None:
    return next((i.get("value") for i in identifiers if i.get("system") == system), None)


# --- the m274 multidose parties -----------------------------------------------------------------------------

DOCTOR_EXTRA = (("activeUntil", "active_until", DATE), ("telecom", "telecom", CONTACT))
PHARMACY = (
    ("name", "name", TEXT),
    ("licence", "licence", IDENT),
    ("address", "address", ADDRESS),
    *DOCTOR_EXTRA,
)


def doctor_ext(doctor: MultidoseDoctor) -> Json:
    """The medication list's multidose-responsible extension (practitioner by HPR, organisation by HER-id:
    the M912 names no organisation number), with AktivTil and Telefon as extra parts."""
    practitioner = {"identifier": {"system": HPR_SYSTEM, "value": doctor.hpr}, "display": doctor.name}
    organization = {"identifier": f.identifier(doctor.her_id), "display": doctor.organisation}
    parts = [
        f.ext("practitioner", "Reference", practitioner),
        f.ext("organization", "Reference", organization),
    ]
    return f.complex_ext(MULTIDOSE_RESPONSIBLE_EXTENSION, parts + parts_of(doctor, DOCTOR_EXTRA))


def doctor_from(resource: Json) -> MultidoseDoctor | None:
    found = f.exts(resource, MULTIDOSE_RESPONSIBLE_EXTENSION)
    if not found:
        return None
    parts = found[0].get("extension", [])
    practitioner = f.ext_value({"extension": parts}, "practitioner", "Reference") or {}
    organization = f.ext_value({"extension": parts}, "organization", "Reference") or {}
    idents = f.idents([organization.get("identifier") or {}])
    return MultidoseDoctor(
        hpr=(practitioner.get("identifier") or {}).get("value", ""),
        name=practitioner.get("display", ""),
        organisation=organization.get("display", ""),
        her_id=idents[0] if idents else Ident(id="", type=Coded()),
        **read_parts(parts, DOCTOR_EXTRA),
    )


def pharmacy_ext(pharmacy: MultidosePharmacy) -> Json:
    return f.complex_ext(EXT_PHARMACY, parts_of(pharmacy, PHARMACY))


def pharmacy_from(resource: Json) -> MultidosePharmacy | None:
    found = f.exts(resource, EXT_PHARMACY)
    return None if not found else MultidosePharmacy(**read_parts(found[0].get("extension", []), PHARMACY))
