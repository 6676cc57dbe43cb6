"""FHIR R4 → e-resept model: the reverse of `to_fhir`. Pure functions.

What is message routing rather than content (the receiver, a fresh GenDate) is not in the FHIR resources:
the caller passes it, by default Reseptformidleren and now. For every message `to_fhir` maps, model →
FHIR → model gives back the same clinical content (the tests check the samples and fixtures).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.adapters.eresept import _fhir_medicine as fm
from app.adapters.eresept._fhir_parties import organisation_from, patient_from, resolver, sender_from
from app.adapters.eresept.model import (
    Deletion,
    Dispense,
    Dispenser,
    Envelope,
    PrescribedMedicine,
    Prescription,
    Recall,
)
from app.adapters.eresept.to_fhir import (
    EXT_COMPLETED,
    EXT_CUSTOMER_RESERVED,
    EXT_DELETED_IN_RF,
    EXT_EMPLOYEE,
    EXT_FEST_UPDATED,
    EXT_FREE_CARD,
    EXT_LAST_PRESCRIPTION,
    EXT_NEW_PRESCRIPTION,
    EXT_NO_REPORT_TO_GP,
    EXT_REITERATIONS,
    EXT_SUBSTITUTION_RESERVED,
    MESSAGE_ID_SYSTEM,
    PRESCRIPTION_ID_SYSTEM,
    REFNR_SYSTEM,
)
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded, Ident, Organisation, OriginalReference

Json = dict[str, Any]
Resolve = Any  # (reference) -> resource | None
HER_TYPE = Coded(code="HER", system="2.16.578.1.12.4.1.1.9051", display="HER-id")
# Reseptformidleren (the national prescription intermediary): the receiver of M1, M5 and M10.
RESEPTFORMIDLEREN = Organisation(name="Reseptformidleren", idents=(Ident(id="80624", type=HER_TYPE),))


def _identifier(resource: Json, system: str) -> str | None:
    return next(
        (
            i.get("value")
            for i in resource.get("identifier", [])
            if isinstance(i, dict) and i.get("system") == system
        ),
        None,
    )


def _required(value: Any, what: str) -> Any:
    if value is None:
        raise KithError(AppRecError.NOT_VALID, f"the FHIR resources have no {what}")
    return value


def _of_type(bundle: Json, resource_type: str) -> Json:
    found = [
        e["resource"]
        for e in bundle.get("entry", [])
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == resource_type
    ]
    resource: Json = _required(found[0] if found else None, resource_type)
    return resource


def _prescribed(resource: Json, resolve: Resolve, reiterations: int, quantity: Any) -> PrescribedMedicine:
    extras = fm.prescribed_extras(resource)
    reference = f.ref_of(resource.get("medicationReference"))
    medication = _required(resolve(reference) if reference else None, "Medication")
    reserved = f.ext_value(resource.get("substitution"), EXT_SUBSTITUTION_RESERVED, "CodeableConcept")
    if reserved is None:
        reserved = f.ext_value(resource, EXT_SUBSTITUTION_RESERVED, "CodeableConcept")
    return PrescribedMedicine(
        article_group=extras.article_group,
        prescribing=fm.prescribing_from(
            resource.get("dosageInstruction", []), medication, extras.use, extras.no_combination
        ),
        quantity=fm.quantity_decimal(quantity.get("value") if isinstance(quantity, dict) else None),
        note=(resource.get("note") or [{}])[0].get("text"),
        reimbursement_basis=extras.reimbursement_basis,
        reimbursement_code=extras.reimbursement_code,
        reiterations=reiterations,
        substitution_reserved=f.opt_coded(reserved),
    )


def _envelope(
    msg_id: str,
    sender: Organisation,
    patient: Json | None,
    receiver: Organisation,
    generated: datetime | None,
    conversation_ref: OriginalReference | None = None,
) -> Envelope:
    return Envelope(
        msg_id=msg_id,
        generated=generated or datetime.now(UTC),
        sender=sender,
        receiver=receiver,
        patient=None if patient is None else patient_from(patient),
        conversation_ref=conversation_ref,
    )


def prescription_from_request(
    request: Json,
    resolve: Resolve,
    *,
    receiver: Organisation = RESEPTFORMIDLEREN,
    generated: datetime | None = None,
    prescription_id: str | None = None,
) -> Prescription:
    """A MedicationRequest (with its Medication, Patient and requester resolvable) → M1. Its ReseptId is
    the request's identifier, or `prescription_id` for a request written on FHIR that has none yet."""
    dispense = request.get("dispenseRequest") or {}
    validity = dispense.get("validityPeriod") or {}
    subject = f.ref_of(request.get("subject"))
    msg_id = prescription_id or _required(_identifier(request, PRESCRIPTION_ID_SYSTEM), "ReseptId identifier")
    fest_updated = f.from_fhir_datetime(f.ext_value(request, EXT_FEST_UPDATED, "DateTime"))
    return Prescription(
        envelope=_envelope(
            msg_id,
            sender_from(f.ref_of(request.get("requester")), None, resolve),
            resolve(subject) if subject else None,
            receiver,
            generated,
        ),
        issued=_required(f.from_fhir_date(request.get("authoredOn")), "authoredOn"),
        expires=_required(f.from_fhir_date(validity.get("end")), "dispenseRequest.validityPeriod.end"),
        medicine=_prescribed(
            request, resolve, int(dispense.get("numberOfRepeatsAllowed", 0)), dispense.get("quantity")
        ),
        # A request written elsewhere has no FEST version: the time of writing says "as of now".
        fest_updated=fest_updated or datetime.now(UTC).replace(microsecond=0, tzinfo=None),
        free_card=f.ext_value(request, EXT_FREE_CARD, "Boolean"),
        reference=_identifier(request, REFNR_SYSTEM),
        earliest_dispense=f.from_fhir_date(validity.get("start")),
        last_prescription=f.ext_value(request, EXT_LAST_PRESCRIPTION, "Boolean"),
    )


def prescription_from_bundle(bundle: Json, **routing: Any) -> Prescription:
    return prescription_from_request(_of_type(bundle, "MedicationRequest"), resolver(bundle), **routing)


def recall_from_request(
    request: Json,
    sender: Organisation,
    patient: Json | None,
    *,
    msg_id: str,
    receiver: Organisation = RESEPTFORMIDLEREN,
    generated: datetime | None = None,
    prescription_id: str | None = None,
) -> Recall:
    """A cancelled/stopped MedicationRequest → M5 (the recall message gets its own `msg_id`); the ReseptId
    is the request's identifier, or `prescription_id` for a request written on FHIR (sent from here)."""
    if request.get("status") not in ("cancelled", "stopped"):
        raise KithError(AppRecError.OTHER, "the MedicationRequest is not cancelled or stopped")
    reason = request.get("statusReason") or {}
    codings = reason.get("coding") or [{}]
    new_id = f.ext_value(request, EXT_NEW_PRESCRIPTION, "Identifier")
    return Recall(
        envelope=_envelope(msg_id, sender, patient, receiver, generated),
        prescription_id=prescription_id
        or _required(_identifier(request, PRESCRIPTION_ID_SYSTEM), "ReseptId identifier"),
        reason=Coded(
            code=codings[0].get("code"),
            system=f.kith_system(codings[0].get("system")),
            display=codings[0].get("display"),
        ),
        note=reason.get("text"),
        new_prescription_id=None if new_id is None else new_id.get("value"),
    )


def deletion_from_request(
    request: Json,
    receiver: Organisation,
    patient: Json | None,
    *,
    msg_id: str,
    in_reply_to: OriginalReference | None,
    sender: Organisation = RESEPTFORMIDLEREN,
    generated: datetime | None = None,
) -> Deletion:
    """A MedicationRequest marked deleted in RF → M7 to its prescriber (`receiver`), answering `in_reply_to`."""
    raw = f.ext_value(request, EXT_DELETED_IN_RF, "DateTime")
    # Kept with its offset (not KITH's naive local time): the sample's Tidspunkt carries one.
    deleted_at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    return Deletion(
        envelope=_envelope(msg_id, sender, patient, receiver, generated, in_reply_to),
        deleted_at=_required(deleted_at, "deletion time (eresept-slettet-rf)"),
    )


def dispense_from_bundle(
    bundle: Json, *, receiver: Organisation = RESEPTFORMIDLEREN, generated: datetime | None = None
) -> Dispense:
    """A MedicationDispense Bundle (as `dispense_to_bundle` writes it) → M10."""
    resolve = resolver(bundle)
    md = _of_type(bundle, "MedicationDispense")
    performer = ((md.get("performer") or [{}])[0]).get("actor") or {}
    pharmacy_ref = f.ref_of(performer)
    pharmacy = resolve(pharmacy_ref) if pharmacy_ref else None
    prescription = ((md.get("authorizingPrescription") or [{}])[0]).get("identifier") or {}
    subject = f.ref_of(md.get("subject"))
    medicine = None
    if "medicationReference" in md:
        reiterations = f.ext_value(md, EXT_REITERATIONS, "Integer")
        medicine = _prescribed(md, resolve, int(reiterations or 0), md.get("quantity"))
    return Dispense(
        envelope=_envelope(
            _required(_identifier(md, MESSAGE_ID_SYSTEM), "M10 MsgId identifier"),
            organisation_from(pharmacy),
            resolve(subject) if subject else None,
            receiver,
            generated,
        ),
        prescription_id=_required(prescription.get("value"), "authorizingPrescription identifier"),
        dispensed_on=_required(f.from_fhir_date(md.get("whenHandedOver")), "whenHandedOver"),
        dispenser=Dispenser(
            her_id=_required((performer.get("identifier") or {}).get("value"), "pharmacy HER-id"),
            name=performer.get("display") or "",
        ),
        medicine=medicine,
        cancelled=md.get("status") == "cancelled",
        completed=f.opt_coded(f.ext_value(md, EXT_COMPLETED, "CodeableConcept")),
        customer_reserved_substitution=f.ext_value(md, EXT_CUSTOMER_RESERVED, "Boolean"),
        no_report_to_gp=f.ext_value(md, EXT_NO_REPORT_TO_GP, "Boolean"),
        employee_id=f.ext_value(md, EXT_EMPLOYEE, "String"),
    )
