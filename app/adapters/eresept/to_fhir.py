"""e-resept model → FHIR R4: M1 → MedicationRequest + Medication, M5 → a cancelled/stopped
MedicationRequest, M10 → MedicationDispense. Pure functions; the Bundles are transactions with
conditional requests, so a repeated message updates instead of duplicating (see README)."""

from __future__ import annotations

from typing import Any

from app.adapters.eresept import _fhir_medicine as fm
from app.adapters.eresept._fhir_parties import (
    ORGANISATION_KEYS,
    PATIENT_KEYS,
    BundleBuilder,
    add_sender,
    organization_resource,
    patient_resource,
)
from app.adapters.eresept.model import Deletion, Dispense, Envelope, PrescribedMedicine, Prescription, Recall
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import AppRecError, KithError

Json = dict[str, Any]
SD, NS = f.SD, f.NS

PRESCRIPTION_ID_SYSTEM = f"{NS}/eresept-resept-id"  # ReseptId = the M1's MsgId
MESSAGE_ID_SYSTEM = f"{NS}/eresept-msg-id"  # MsgId of an M10 (the dispense report's own id)
REFNR_SYSTEM = f"{NS}/eresept-refnr"  # the prescriber's own reference (RefNr)
MEDICATION_PART_SYSTEM = f"{NS}/eresept-part"
EXT_FREE_CARD = f"{SD}/eresept-frikort"
EXT_LAST_PRESCRIPTION = f"{SD}/eresept-last-resept"
EXT_FEST_UPDATED = f"{SD}/eresept-oppdatert-fest"
EXT_SUBSTITUTION_RESERVED = f"{SD}/eresept-bytteres-rekvirent"
EXT_NEW_PRESCRIPTION = f"{SD}/eresept-ny-resept-id"
EXT_COMPLETED = f"{SD}/eresept-avsluttet"
EXT_CUSTOMER_RESERVED = f"{SD}/eresept-byttereservasjon-kunde"
EXT_NO_REPORT_TO_GP = f"{SD}/eresept-reservasjon-rapport-fastlege"
EXT_EMPLOYEE = f"{SD}/eresept-ansatt-id"
EXT_REITERATIONS = f"{SD}/eresept-reiterasjon"
EXT_DELETED_IN_RF = f"{SD}/eresept-slettet-rf"  # when Reseptformidleren deleted the prescription (M7)
RECALL_REASON_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.7500"  # Volven 7500 årsak til tilbakekalling
PACKAGES = "pakning"  # Antall counts packages
RESERVED_YES = "1"  # BytteresRekvirent 1 "Ja": the prescriber reserves against generic substitution


def prescription_identifier(prescription_id: str) -> Json:
    return {"system": PRESCRIPTION_ID_SYSTEM, "value": prescription_id}


def _patient(builder: BundleBuilder, envelope: Envelope) -> str:
    if envelope.patient is None:
        raise KithError(AppRecError.PATIENT_INFO_INSUFFICIENT, "the message names no patient")
    return builder.add_keyed("patient", patient_resource(envelope.patient), PATIENT_KEYS)


def _medication(builder: BundleBuilder, pm: PrescribedMedicine, part: str) -> str:
    med = fm.medication(pm.prescribing.medicine)
    key = {"system": MEDICATION_PART_SYSTEM, "value": f"{builder.key}#{part}"}
    med["identifier"] = [key]
    return builder.add(part, med, {"method": "PUT", "url": f"Medication?{f.search_identifier(key)}"})


def medication_request(rx: Prescription, patient: str, medication: str, requester: str | None) -> Json:
    pm = rx.medicine
    extensions = fm.prescribed_extensions(pm)
    extensions.append(f.ext(EXT_FEST_UPDATED, "DateTime", f.fhir_datetime(rx.fest_updated)))
    if rx.free_card is not None:
        extensions.append(f.ext(EXT_FREE_CARD, "Boolean", rx.free_card))
    if rx.last_prescription is not None:
        extensions.append(f.ext(EXT_LAST_PRESCRIPTION, "Boolean", rx.last_prescription))
    identifiers = [prescription_identifier(rx.envelope.msg_id)]
    if rx.reference is not None:
        identifiers.append({"system": REFNR_SYSTEM, "value": rx.reference})
    validity = {"end": rx.expires.isoformat()}
    if rx.earliest_dispense is not None:
        validity["start"] = rx.earliest_dispense.isoformat()
    dispense: Json = {"validityPeriod": validity, "numberOfRepeatsAllowed": pm.reiterations}
    if pm.quantity is not None:
        dispense["quantity"] = {"value": float(pm.quantity), "unit": PACKAGES}
    out: Json = {
        "resourceType": "MedicationRequest",
        "extension": extensions,
        "identifier": identifiers,
        "status": "active",
        "intent": "order",
        "medicationReference": f.reference(medication, pm.prescribing.medicine.name_form_strength),
        "subject": f.reference(patient),
        "authoredOn": rx.issued.isoformat(),
        "dosageInstruction": fm.dosage_instructions(pm.prescribing),
        "dispenseRequest": dispense,
    }
    if requester is not None:
        out["requester"] = f.reference(requester)
    if pm.note is not None:
        out["note"] = [{"text": pm.note}]
    if pm.reimbursement_code is not None:  # the diagnosis behind a blue prescription (also in an extension)
        out["reasonCode"] = [f.cc(pm.reimbursement_code)]
    if pm.substitution_reserved is not None:
        out["substitution"] = {
            "allowedBoolean": pm.substitution_reserved.code != RESERVED_YES,
            "extension": [
                f.ext(EXT_SUBSTITUTION_RESERVED, "CodeableConcept", f.cc(pm.substitution_reserved))
            ],
        }
    return out


def prescription_to_bundle(rx: Prescription) -> Json:
    """M1 → transaction Bundle: Patient, Organization, Practitioner, PractitionerRole, Medication and the
    MedicationRequest (conditional update on the ReseptId)."""
    builder = BundleBuilder(rx.envelope.msg_id)
    patient = _patient(builder, rx.envelope)
    _, role = add_sender(builder, rx.envelope.sender)
    medication = _medication(builder, rx.medicine, "medication")
    request = medication_request(rx, patient, medication, role)
    key = prescription_identifier(rx.envelope.msg_id)
    builder.add("request", request, {"method": "PUT", "url": f"MedicationRequest?{f.search_identifier(key)}"})
    return builder.bundle()


def revoke(request: Json, recall: Recall, *, dispensed: bool = False) -> Json:
    """M5 applied to the stored MedicationRequest: `cancelled` (nothing dispensed yet) or `stopped` (FHIR R4
    has no `revoked` for MedicationRequest), statusReason = Arsak with Merknad as its text."""
    if prescription_identifier(recall.prescription_id) not in request.get("identifier", []):
        raise KithError(AppRecError.OTHER, "the recall names another prescription")
    reason = f.cc(recall.reason)
    if recall.note is not None:
        reason = {**reason, "text": recall.note}
        reason.pop("extension", None)
    out = {**request, "status": "stopped" if dispensed else "cancelled", "statusReason": reason}
    extensions = [e for e in request.get("extension", []) if e.get("url") != EXT_NEW_PRESCRIPTION]
    if recall.new_prescription_id is not None:
        extensions.append(
            f.ext(EXT_NEW_PRESCRIPTION, "Identifier", prescription_identifier(recall.new_prescription_id))
        )
    out["extension"] = extensions
    return out


def mark_deleted(request: Json, deletion: Deletion) -> Json:
    """M7 applied to the stored MedicationRequest (found by the caller through the conversation): the
    deletion time in an extension; a request still active or on hold becomes `cancelled` (it can no
    longer be dispensed), a cancelled or stopped one keeps its status and reason."""
    extensions = [e for e in request.get("extension", []) if e.get("url") != EXT_DELETED_IN_RF]
    extensions.append(f.ext(EXT_DELETED_IN_RF, "DateTime", f.fhir_datetime(deletion.deleted_at)))
    out = {**request, "extension": extensions}
    if request.get("status") in ("active", "on-hold", "draft"):
        out["status"] = "cancelled"
    return out


def dispense_to_bundle(dispense: Dispense) -> Json:
    """M10 → transaction Bundle: Patient, the pharmacy (Organization), the dispensed Medication and the
    MedicationDispense, which points at its prescription by the ReseptId (a logical reference)."""
    builder = BundleBuilder(dispense.envelope.msg_id)
    patient = _patient(builder, dispense.envelope)
    pharmacy = builder.add_keyed("sender", organization_resource(dispense.envelope.sender), ORGANISATION_KEYS)
    extensions: list[Json] = []
    out: Json = {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": MESSAGE_ID_SYSTEM, "value": dispense.envelope.msg_id}],
        "status": "cancelled" if dispense.cancelled else "completed",
        "subject": f.reference(patient),
        "performer": [
            {
                "actor": {
                    "reference": pharmacy,
                    "identifier": {"system": f.ID_SYSTEMS["HER"], "value": dispense.dispenser.her_id},
                    "display": dispense.dispenser.name,
                }
            }
        ],
        "authorizingPrescription": [{"identifier": prescription_identifier(dispense.prescription_id)}],
        "whenHandedOver": dispense.dispensed_on.isoformat(),
    }
    if dispense.medicine is not None:
        pm = dispense.medicine
        medication = _medication(builder, pm, "medication")
        out["medicationReference"] = f.reference(medication, pm.prescribing.medicine.name_form_strength)
        if pm.quantity is not None:
            out["quantity"] = {"value": float(pm.quantity), "unit": PACKAGES}
        out["dosageInstruction"] = fm.dosage_instructions(pm.prescribing)
        extensions.extend(fm.prescribed_extensions(pm))
        if pm.substitution_reserved is not None:
            extensions.append(
                f.ext(EXT_SUBSTITUTION_RESERVED, "CodeableConcept", f.cc(pm.substitution_reserved))
            )
        if pm.note is not None:
            out["note"] = [{"text": pm.note}]
        extensions.append(f.ext(EXT_REITERATIONS, "Integer", pm.reiterations))  # no element in a dispense
    else:
        out["medicationCodeableConcept"] = {"extension": [f.ext(f.EXT_DAR, "Code", "unknown")]}
    if dispense.completed is not None:
        extensions.append(f.ext(EXT_COMPLETED, "CodeableConcept", f.cc(dispense.completed)))
    if dispense.customer_reserved_substitution is not None:
        extensions.append(f.ext(EXT_CUSTOMER_RESERVED, "Boolean", dispense.customer_reserved_substitution))
    if dispense.no_report_to_gp is not None:
        extensions.append(f.ext(EXT_NO_REPORT_TO_GP, "Boolean", dispense.no_report_to_gp))
    if dispense.employee_id is not None:
        extensions.append(f.ext(EXT_EMPLOYEE, "String", dispense.employee_id))
    if extensions:
        out = {
            "resourceType": "MedicationDispense",
            "extension": extensions,
            **{k: v for k, v in out.items() if k != "resourceType"},
        }
    key = {"system": MESSAGE_ID_SYSTEM, "value": dispense.envelope.msg_id}
    builder.add("dispense", out, {"method": "PUT", "url": f"MedicationDispense?{f.search_identifier(key)}"})
    return builder.bundle()
