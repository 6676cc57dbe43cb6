"""What a received e-resept message changes, read through the engine with the caller's context (so the
access policy and the audit apply): the transaction to run and what the message's record is about.

The intake (`kith/routes.receive`) adds the record of the message and runs the transaction, so the
change and its receipt are stored together or not at all.
"""

from __future__ import annotations

from typing import Any

from app.adapters.eresept import intake as ei
from app.adapters.eresept import to_fhir
from app.adapters.eresept.fhir_legemiddelliste import medication_list_to_bundle
from app.adapters.eresept.fhir_pll import medications_in_use_to_bundle
from app.adapters.eresept.legemiddelliste import parse_m25
from app.adapters.eresept.model import Deletion, Dispense, MedicationsInUse, Prescription, Recall
from app.adapters.kith import intake
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.stored import find_one
from app.adapters.kith.to_fhir import sender_key
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.search.values import escape_value

Json = dict[str, Any]


async def _prescription(engine: Engine, ctx: RequestContext, prescription_id: str) -> Json | None:
    """The MedicationRequest of a ReseptId: received as an M1 (its identifier), or written on FHIR and
    sent from here as an M1 (the ReseptId is on the outgoing record, see outgoing.py)."""
    found = await find_one(engine, ctx, "MedicationRequest", to_fhir.prescription_identifier(prescription_id))
    if found is None:
        sent = await find_one(
            engine, ctx, "Communication", {"system": intake.SENT_MSG_ID_SYSTEM, "value": prescription_id}
        )
        found = await engine.read_resource(ctx, _about(sent, "MedicationRequest/"))
    return found


def _about(record: Json | None, prefix: str) -> str | None:
    """The first reference of a message record's `about` to a resource of a type (`prefix` "Type/")."""
    about = [a.get("reference", "") for a in (record or {}).get("about", [])]
    return next((r for r in about if r.startswith(prefix)), None)


async def _dispensed(engine: Engine, ctx: RequestContext, request_id: str) -> bool:
    query = [("prescription", f"MedicationRequest/{request_id}"), ("status", "completed")]
    return bool(await engine.search(ctx, "MedicationDispense", query, 1))


def _transaction(*entries: Json) -> Json:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


async def _recalled_request(engine: Engine, ctx: RequestContext, deletion: Deletion) -> Json:
    """The prescription an M7 is about, through the recall it answers (its ConversationRef): an M5
    received here or sent from here, found by its MsgId."""
    recall_id = escape_value(ei.recalled_message_id(deletion))
    query = [
        ("identifier", f"{intake.RECEIVED_MSG_ID_SYSTEM}|{recall_id},{intake.SENT_MSG_ID_SYSTEM}|{recall_id}")
    ]
    found = await engine.search(ctx, "Communication", query, 1)
    request = await engine.read_resource(ctx, _about(found[0] if found else None, "MedicationRequest/"))
    if request is None:
        raise KithError(AppRecError.OTHER, "the M7 answers no recall of a prescription held here")
    return request


async def changes(
    engine: Engine, ctx: RequestContext, message: ei.EreseptMessage
) -> tuple[Json, intake.Anchor]:
    """The transaction an e-resept message makes, and the anchor of its record. A recall or deletion of a
    prescription not held here is the message's fault (KithError, a negative AppRec)."""
    if isinstance(message, Prescription):
        bundle = to_fhir.prescription_to_bundle(message)
        entry = bundle["entry"][-1]
        return bundle, intake.entry_anchor(entry, sender=entry["resource"].get("requester"))
    if isinstance(message, Dispense):
        bundle = to_fhir.dispense_to_bundle(message)
        stored = await _prescription(engine, ctx, message.prescription_id)
        if stored is not None:
            ei.link_dispense(bundle, stored["id"])
        entry = bundle["entry"][-1]
        pharmacy = {"reference": entry["resource"]["performer"][0]["actor"]["reference"]}
        prescriber = [stored["requester"]] if stored and "requester" in stored else []
        return bundle, intake.entry_anchor(entry, sender=pharmacy, recipients=prescriber)
    if isinstance(message, Recall):
        stored = await _prescription(engine, ctx, message.prescription_id)
        if stored is None:
            raise KithError(AppRecError.OTHER, "the recall names a prescription not held here (ReseptId)")
        dispensed = await _dispensed(engine, ctx, stored["id"])
        entry = intake.update_entry(to_fhir.revoke(stored, message, dispensed=dispensed))
        return _transaction(entry), intake.entry_anchor(entry, sender=stored.get("requester"))
    if isinstance(message, MedicationsInUse):
        return _pll(message)
    stored = await _recalled_request(engine, ctx, message)
    entry = intake.update_entry(to_fhir.mark_deleted(stored, message))
    prescriber = [stored["requester"]] if "requester" in stored else []
    return _transaction(entry), intake.entry_anchor(entry, recipients=prescriber)


def _pll(pll: MedicationsInUse) -> tuple[Json, intake.Anchor]:
    """An M912: RF's PLL as a snapshot List, and the drug reactions of the lists it carries (read through
    the hardened parser; one that cannot be read refuses the message)."""
    bundle = medications_in_use_to_bundle(pll)
    [patient_url] = [e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    list_url = bundle["entry"][0]["fullUrl"]
    subject = {"reference": patient_url}
    sender = sender_key(pll.envelope.sender)
    allergies = [
        e
        for data in pll.lists
        for e in medication_list_to_bundle(
            parse_m25(data), subject, sender_key=sender, patient_key=pll.patient.fnr
        )["entry"]
        if e["resource"]["resourceType"] == "AllergyIntolerance"
    ]
    transaction = ei.pll_transaction(bundle, pll.patient.fnr, pll.envelope.msg_id, allergies)
    return transaction, intake.Anchor(list_url, subject)
