"""M1 (Resept), M5 (Tilbakekalling) and M10 (Utleveringsrapport) in their MsgHead: parse and build.

Untrusted bytes go through the KITH adapter's hardened parser (`xmlsafe.parse_xml`: no DTD, size limit,
declared encoding honoured) and the envelope through its MsgHead reader/writer; this module only adds the
e-resept business documents. Every failure is a `KithError` with a Volven 8221 code, ready for an AppRec.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date

from lxml import etree

from app.adapters.eresept._forskrivning import (
    NS_M1,
    parse_prescribed_medicine,
    put_prescribed_medicine,
)
from app.adapters.eresept.model import Deletion, Dispense, Dispenser, Envelope, Prescription, Recall
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded
from app.adapters.kith.msghead import (
    XML_INSTANCE,
    Document,
    MsgHead,
    RefDoc,
    build_msghead,
    parse_msghead,
)
from app.adapters.kith.xmlsafe import parse_xml

NS_M5 = "http://www.kith.no/xmlstds/eresept/m5/2013-04-16"
NS_M10 = "http://www.kith.no/xmlstds/eresept/m10/2013-10-08"
NS_UTLEVERING = "http://www.kith.no/xmlstds/eresept/utlevering/2013-10-08"
NS_FK1 = "http://www.kith.no/xmlstds/felleskomponent1"
NS_M7 = "http://www.kith.no/xmlstds/eresept/m7/2008-05-01"

# MsgHead Type (Volven 8279) of each message.
TYPE_M1 = Coded(code="ERM1", display="Resept")
TYPE_M5 = Coded(code="ERM5", display="Tilbakekalling av resept")
TYPE_M10 = Coded(code="ERM10", display="Utleveringsrapport")
TYPE_M7 = Coded(code="ERM7", display="Slettet resept i RF")
HER_ID_TYPE = Coded(code="HER", system="2.16.578.1.12.4.1.1.9051", display="HER-id")


def xs_date(value: str | None, tag: str) -> date | None:
    """An xs:date, which may carry a time zone ("2019-07-16+02:00"): the calendar date is what counts."""
    if value is None or not value.strip():
        return None
    return x.to_date(value.strip()[:10], tag)


def from_base64(value: str | None, what: str) -> bytes:
    """Base64 content of an incoming message, decoded (T02 when it is not valid base64)."""
    try:
        return base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        raise KithError(AppRecError.NOT_VALID, f"{what} is not valid base64") from None


def required_date(el: etree._Element, ns: str, tag: str) -> date:
    found = xs_date(x.text(x.require(el, ns, tag).getparent(), ns, tag), tag)
    if found is None:
        raise KithError(AppRecError.NOT_VALID, f"mandatory element <{tag}> is empty")
    return found


def open_envelope(data: bytes | etree._Element, ns: str, name: str) -> tuple[Envelope, etree._Element]:
    """The envelope and the business document `{ns}name` (T10 when the message is of another kind)."""
    root = parse_xml(data) if isinstance(data, bytes) else data
    head = parse_msghead(root)
    business = next((d.ref_doc.content for d in head.documents if d.ref_doc.content is not None), None)
    if business is None or business.tag != x.q(ns, name):
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, f"the MsgHead does not carry a <{name}> ({ns})")
    envelope = Envelope(
        msg_id=head.msg_id,
        generated=head.gen_date,
        sender=head.sender,
        receiver=head.receiver,
        patient=head.patient,
        conversation_ref=head.conversation_ref,
    )
    return envelope, business


def wrap_single(envelope: Envelope, msg_type: Coded, business: etree._Element) -> etree._Element:
    return wrap_documents(
        envelope, msg_type, (Document(ref_doc=RefDoc(msg_type=XML_INSTANCE, content=business)),)
    )


def wrap_documents(envelope: Envelope, msg_type: Coded, documents: tuple[Document, ...]) -> etree._Element:
    head = MsgHead(
        msg_type=msg_type,
        gen_date=envelope.generated,
        msg_id=envelope.msg_id,
        sender=envelope.sender,
        receiver=envelope.receiver,
        patient=envelope.patient,
        conversation_ref=envelope.conversation_ref,
        documents=documents,
    )
    return build_msghead(head)


# --- M1 -----------------------------------------------------------------------------------------------------


def parse_m1(data: bytes | etree._Element) -> Prescription:
    envelope, el = open_envelope(data, NS_M1, "Resept")
    if x.child(el, NS_M1, "ReseptDokHandelsvare") is not None:
        raise KithError(
            AppRecError.NOT_VALID, "<ReseptDokHandelsvare> (non-medicine goods) is not supported yet"
        )
    fest_updated = x.to_datetime(x.text(el, NS_M1, "OppdatertFest"), "OppdatertFest")
    if fest_updated is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <OppdatertFest> is missing")
    return Prescription(
        envelope=envelope,
        issued=required_date(el, NS_M1, "Forskrivningsdato"),
        expires=required_date(el, NS_M1, "Utloper"),
        medicine=parse_prescribed_medicine(x.require(el, NS_M1, "ReseptDokLegemiddel")),
        fest_updated=fest_updated,
        free_card=x.to_bool(x.text(el, NS_M1, "Frikort"), "Frikort"),
        reference=x.text(el, NS_M1, "RefNr"),
        earliest_dispense=xs_date(x.text(el, NS_M1, "TidligsteUtlevering"), "TidligsteUtlevering"),
        last_prescription=x.to_bool(x.text(el, NS_M1, "LastResept"), "LastResept"),
    )


def build_m1(prescription: Prescription) -> etree._Element:
    el = etree.Element(x.q(NS_M1, "Resept"), nsmap={None: NS_M1})
    x.sub(el, NS_M1, "Forskrivningsdato", prescription.issued.isoformat())
    x.sub(el, NS_M1, "Utloper", prescription.expires.isoformat())
    x.put_bool(el, NS_M1, "Frikort", prescription.free_card)
    x.opt_text(el, NS_M1, "RefNr", prescription.reference)
    put_prescribed_medicine(el, prescription.medicine)
    x.sub(el, NS_M1, "OppdatertFest", prescription.fest_updated.isoformat())
    if prescription.earliest_dispense is not None:
        x.sub(el, NS_M1, "TidligsteUtlevering", prescription.earliest_dispense.isoformat())
    x.put_bool(el, NS_M1, "LastResept", prescription.last_prescription)
    return wrap_single(prescription.envelope, TYPE_M1, el)


# --- M5 -----------------------------------------------------------------------------------------------------


def parse_m5(data: bytes | etree._Element) -> Recall:
    envelope, el = open_envelope(data, NS_M5, "Tilbakekalling")
    return Recall(
        envelope=envelope,
        prescription_id=x.required_text(el, NS_M5, "ReseptId"),
        reason=x.coded(x.require(el, NS_M5, "Arsak")) or Coded(),
        note=x.text(el, NS_M5, "Merknad"),
        new_prescription_id=x.ident_text(el, NS_M5, "NyReseptId"),
    )


def build_m5(recall: Recall) -> etree._Element:
    el = etree.Element(x.q(NS_M5, "Tilbakekalling"), nsmap={None: NS_M5})
    x.sub(el, NS_M5, "ReseptId", recall.prescription_id)
    x.opt_text(el, NS_M5, "Merknad", recall.note)
    x.put_coded(el, NS_M5, "Arsak", recall.reason)
    x.opt_text(el, NS_M5, "NyReseptId", recall.new_prescription_id)
    return wrap_single(recall.envelope, TYPE_M5, el)


# --- M7 -----------------------------------------------------------------------------------------------------


def parse_m7(data: bytes | etree._Element) -> Deletion:
    envelope, el = open_envelope(data, NS_M7, "SlettetReseptRF")
    deleted_at = x.to_datetime(x.text(el, NS_M7, "Tidspunkt"), "Tidspunkt")
    if deleted_at is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <Tidspunkt> is missing")
    return Deletion(envelope=envelope, deleted_at=deleted_at)


def build_m7(deletion: Deletion) -> etree._Element:
    el = etree.Element(x.q(NS_M7, "SlettetReseptRF"), nsmap={None: NS_M7})
    x.sub(el, NS_M7, "Tidspunkt", deletion.deleted_at.isoformat())
    return wrap_single(deletion.envelope, TYPE_M7, el)


# --- M10 ----------------------------------------------------------------------------------------------------


def parse_m10(data: bytes | etree._Element) -> Dispense:
    envelope, report = open_envelope(data, NS_M10, "Utleveringsrapport")
    el = x.require(report, NS_UTLEVERING, "Utlevering")
    dispenser = x.require(el, NS_UTLEVERING, "Utleverer")
    medicine = x.child(el, NS_M1, "ReseptDokLegemiddel")
    return Dispense(
        envelope=envelope,
        prescription_id=x.required_text(el, NS_UTLEVERING, "ReseptId"),
        dispensed_on=required_date(el, NS_UTLEVERING, "Utleveringsdato"),
        dispenser=Dispenser(
            her_id=x.required_text(x.require(dispenser, NS_UTLEVERING, "HerId"), NS_FK1, "Id"),
            name=x.required_text(dispenser, NS_UTLEVERING, "Navn"),
        ),
        medicine=None if medicine is None else parse_prescribed_medicine(medicine),
        cancelled=bool(x.to_bool(x.text(el, NS_UTLEVERING, "Annullering"), "Annullering")),
        completed=x.coded(el, NS_UTLEVERING, "Avsluttet"),
        customer_reserved_substitution=x.to_bool(
            x.text(el, NS_UTLEVERING, "ByttereservasjonKunde"), "ByttereservasjonKunde"
        ),
        no_report_to_gp=x.to_bool(
            x.text(report, NS_M10, "ReservasjonRapportFastlege"), "ReservasjonRapportFastlege"
        ),
        employee_id=x.ident_text(report, NS_M10, "AnsattId"),
    )


def build_m10(dispense: Dispense) -> etree._Element:
    report = etree.Element(x.q(NS_M10, "Utleveringsrapport"), nsmap={None: NS_M10})
    el = etree.SubElement(report, x.q(NS_UTLEVERING, "Utlevering"), nsmap={None: NS_UTLEVERING})
    x.sub(el, NS_UTLEVERING, "ReseptId", dispense.prescription_id)
    x.sub(el, NS_UTLEVERING, "Utleveringsdato", dispense.dispensed_on.isoformat())
    x.put_bool(el, NS_UTLEVERING, "Annullering", dispense.cancelled)
    x.put_coded(el, NS_UTLEVERING, "Avsluttet", dispense.completed, cv=False)
    x.put_bool(el, NS_UTLEVERING, "ByttereservasjonKunde", dispense.customer_reserved_substitution)
    if dispense.medicine is not None:
        put_prescribed_medicine(el, dispense.medicine)
    dispenser = x.sub(el, NS_UTLEVERING, "Utleverer")
    her = x.sub(dispenser, NS_UTLEVERING, "HerId")
    x.sub(her, NS_FK1, "Id", dispense.dispenser.her_id)  # HerId is an fk1:Ident (no Ident wrapper)
    x.put_coded(her, NS_FK1, "TypeId", HER_ID_TYPE)
    x.sub(dispenser, NS_UTLEVERING, "Navn", dispense.dispenser.name)
    # Both mandatory in the XSD: "no reservation" and an unknown employee are written explicitly.
    x.put_bool(report, NS_M10, "ReservasjonRapportFastlege", bool(dispense.no_report_to_gp))
    x.sub(report, NS_M10, "AnsattId", dispense.employee_id or "")
    return wrap_single(dispense.envelope, TYPE_M10, report)
