"""Receiving a KITH message (a Henvisning, a Dialogmelding, or an e-resept message): read it, decide the receipt, and
describe the record of it.

Pure functions; routes.py stores through the engine. Every message gets an AppRec: an accepted one is
stored together with a `Communication` that records it (the sender's MsgId as identifier, the AppRec sent
back as payload), in the message's own transaction; a repeat of the same MsgId from the same sender is
answered with that stored AppRec and changes nothing. A refused message is answered with an error AppRec
and leaves no trace in the store.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lxml import etree

from app.adapters.epikrise.model import Epikrise
from app.adapters.epikrise.parse import is_epikrise, lenient_envelope, parse_epikrise, unmapped_epikrise
from app.adapters.eresept import intake as eresept
from app.adapters.eresept.intake import EreseptMessage
from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _xml as x
from app.adapters.kith import henvisning_v1, henvisning_v2, msghead
from app.adapters.kith.apprec import AppRec, AppRecErrorItem, AppRecStatus, ReceivedMessage, parse_apprec
from app.adapters.kith.dialogmelding import Dialogmelding, is_dialogmelding, parse_dialogmelding
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.henvisning import parse_henvisning_tree
from app.adapters.kith.model import Coded, Ident, Organisation, Referral
from app.adapters.kith.to_fhir import sender_key
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator, get_validator
from app.adapters.plo.model import PloMessage
from app.adapters.plo.parse import is_plo, parse_plo
from app.fhir.outcome import Category, FhirError

Json = dict[str, Any]

MSG_ID_SYSTEM = f"{f.NS}/kith-msg-id"  # "<sender key>/<MsgId>": MsgIds are unique per sender
SENT_MSG_ID_SYSTEM = f"{f.NS}/kith-msg-id-sent"  # MsgId of a message we send: a uuid of our own
# The bare MsgId of a received message, as a later message's ConversationRef/RefToParent names it (a GUID
# by the MsgHead standard, so unique without its sender).
RECEIVED_MSG_ID_SYSTEM = f"{f.NS}/kith-msg-id-received"
MESSAGE_CATEGORY_SYSTEM = "http://helsebro.no/fhir/CodeSystem/kith-message"
RECEIVED_CATEGORY = {"system": MESSAGE_CATEGORY_SYSTEM, "code": "received", "display": "Mottatt KITH-melding"}
OUTGOING_CATEGORY = {
    "system": MESSAGE_CATEGORY_SYSTEM,
    "code": "outgoing",
    "display": "Utgående KITH-melding",
}
MESSAGE_TYPE_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.8279"  # Volven 8279 Meldingens funksjon
APPREC_TITLE = "AppRec"
UNKNOWN_TYPE = Coded(code="UKJENT", display="Ukjent meldingstype")
_UNKNOWN_SENDER = Organisation(name="Ukjent avsender")

# Receipt code -> HTTP status of the answer. Messages that are not XML, or forbidden XML (a DTD, an
# entity bomb), are bad requests; readable messages whose content is refused are unprocessable.
_HTTP_STATUS = {AppRecError.NOT_XML: 400, AppRecError.FORMAT_OTHER: 400}


class Rejected(Exception):
    """The message is refused: answer with an error AppRec and HTTP `status`; store nothing."""

    def __init__(self, error: KithError, received: ReceivedMessage | None, status: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.received = received  # None when not even the envelope could be read
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:  # raised in a worker process too (read_with_schemas)
        return (type(self), (self.error, self.received, self.status))


@dataclass(frozen=True)
class Accepted:
    message: Referral | EreseptMessage | Dialogmelding | Epikrise | PloMessage
    received: ReceivedMessage
    key: str  # MSG_ID_SYSTEM value
    unmapped: tuple[str, ...] = ()  # element paths the model does not hold (Henvisning, Epikrise): status 3


def receipt_status(accepted: Accepted) -> tuple[AppRecStatus, tuple[AppRecErrorItem, ...]]:
    """Status 1, or 3 (OK with error in part) naming the elements that were received but not kept."""
    if not accepted.unmapped:
        return AppRecStatus.OK, ()
    names = ", ".join(accepted.unmapped)
    details = f"Mottatt, men disse elementene er ikke tatt vare på: {names}"
    return AppRecStatus.OK_PARTIAL_ERROR, (AppRecErrorItem.of(AppRecError.OTHER, details),)


def envelope(root: etree._Element) -> ReceivedMessage | None:
    """Who sent which message, read leniently, for the receipt of a message that is refused later."""
    try:
        if root.tag == x.q(msghead.NS, "MsgHead"):
            return ReceivedMessage.from_msghead(msghead.parse_msghead(root))
        if x.local(root) == "Message" and x.namespace(root) in henvisning_v1.VERSIONS:
            msg_id, generated, msg_type, sender, receiver = henvisning_v1.parse_envelope_v1(root)
            return ReceivedMessage(msg_type, generated, msg_id, sender, receiver)
    except KithError:
        pass
    if root.tag == x.q(msghead.NS, "MsgHead"):
        return _lenient_msghead(root)
    if x.local(root) == "Message" and x.namespace(root) in henvisning_v1.VERSIONS:
        return _lenient_v1(root)
    if is_epikrise(root):
        return _lenient_epikrise(root)
    return None


def _lenient_epikrise(root: etree._Element) -> ReceivedMessage | None:
    """The header of an Epikrise 1.x that does not parse or validate: MsgId, GenDate, Type and the sender
    (ServProvider, the hospital) when they can be read. None without a MsgId."""
    found = lenient_envelope(root)
    if found is None:
        return None
    msg_id, generated, msg_type, sender = found
    return ReceivedMessage(
        msg_type,
        generated or datetime.now().replace(microsecond=0),
        msg_id,
        sender or _UNKNOWN_SENDER,
        Organisation(),
    )


def _lenient_v1(root: etree._Element) -> ReceivedMessage | None:
    """The own header of a Henvisning 1.x that does not parse as a whole (no ServProvider, a bad GenDate):
    the MsgId, and the requester when it can be read. None without a MsgId."""
    ns = x.namespace(root) or ""
    msg_id = x.ident_text(root, ns, "MsgId")
    if not msg_id:
        return None
    try:
        generated = x.ts_attr(root, ns, "GenDate")
    except KithError:
        generated = None
    requester = x.child(x.child(root, ns, "ServReq"), ns, "Requester")
    try:
        sender = henvisning_v1.requester(requester, ns) if requester is not None else _UNKNOWN_SENDER
    except KithError:
        sender = _UNKNOWN_SENDER
    return ReceivedMessage(
        x.coded(root, ns, "Type") or UNKNOWN_TYPE,
        generated or datetime.now().replace(microsecond=0),
        msg_id,
        sender,
        Organisation(),
    )


def _lenient_organisation(info: etree._Element | None, tag: str) -> Organisation | None:
    el = x.child(x.child(info, msghead.NS, tag), msghead.NS, "Organisation")
    if el is None:
        return None
    try:
        return msghead.parse_organisation(el)
    except KithError:  # an Ident without Id somewhere: the ids that can be read
        idents = tuple(
            Ident(ident_id, x.coded(i, msghead.NS, "TypeId") or Coded())
            for i in x.children(el, msghead.NS, "Ident")
            if (ident_id := x.ident_text(i, msghead.NS, "Id"))
        )
        return Organisation(name=x.text(el, msghead.NS, "OrganisationName"), idents=idents)


def _lenient_msghead(root: etree._Element) -> ReceivedMessage | None:
    """The header of a MsgHead that does not parse (a bad date, a missing receiver or document ...): whatever
    of MsgId, type, GenDate and sender can be read, so that the refusal still names the message and goes
    back to its sender. None without a MsgId. A missing receiver is left empty (the intake answers as itself)."""
    info = x.child(root, msghead.NS, "MsgInfo")
    msg_id = x.ident_text(info, msghead.NS, "MsgId")
    if not msg_id:
        return None
    try:
        generated = x.to_datetime(x.text(info, msghead.NS, "GenDate"), "GenDate")
    except KithError:
        generated = None
    return ReceivedMessage(
        x.coded(info, msghead.NS, "Type") or UNKNOWN_TYPE,
        generated or datetime.now().replace(microsecond=0),
        msg_id,
        _lenient_organisation(info, "Sender") or _UNKNOWN_SENDER,
        _lenient_organisation(info, "Receiver") or Organisation(),
    )


def unknown_message(own: Organisation, now: datetime) -> ReceivedMessage:
    """Stands in for a message that could not be read at all: the receipt comes from us, to nobody known."""
    return ReceivedMessage(UNKNOWN_TYPE, now, "UKJENT", _UNKNOWN_SENDER, own)


@dataclass(frozen=True)
class ReceiptIn:
    """An AppRec for a message we sent: never answered with a receipt, recorded on the sent message."""

    apprec: AppRec


def read_with_schemas(data: bytes, max_bytes: int, xsd_dir: str | None) -> Accepted | ReceiptIn:
    """read_message, validating against the schemas in `xsd_dir` when given: callable in a worker process
    (app/fhir/cpu_pool.py), which compiles the schemas once (get_validator)."""
    validator = get_validator(xsd_dir) if xsd_dir else None
    return read_message(data, max_bytes=max_bytes, validator=validator)


def read_message(data: bytes, *, max_bytes: int, validator: XsdValidator | None) -> Accepted | ReceiptIn:
    """Parse, validate (when schemas are configured) and map a received Henvisning, Dialogmelding 1.0/1.1,
    Epikrise 1.0/1.1/1.2, PLO message (1.5/1.6/2.0, app/adapters/plo) or e-resept message, or
    raise Rejected. An AppRec is returned as such (a bad one raises FhirError: a receipt is not answered by
    a receipt)."""
    if len(data) > max_bytes:
        error = KithError(AppRecError.FORMAT_OTHER, f"message exceeds the size limit of {max_bytes} bytes")
        raise Rejected(error, None, 413)
    try:
        root = parse_xml(data, max_bytes=max_bytes)
    except KithError as error:
        raise Rejected(error, None, _HTTP_STATUS.get(error.code, 422)) from None
    if x.local(root) == "AppRec":
        try:
            if validator is not None:
                validator.check(root)
            return ReceiptIn(parse_apprec(root))
        except KithError as error:
            raise FhirError(Category.UNPROCESSABLE, f"AppRec refused: {error}") from None
    try:
        if validator is not None:
            validator.check(root)
        if eresept.is_eresept(root):
            msg_type, message = eresept.read(root)
            env = message.envelope
            received = ReceivedMessage(msg_type, env.generated, env.msg_id, env.sender, env.receiver)
            return Accepted(message, received, message_key(env.sender, env.msg_id))
        if is_dialogmelding(root):
            dialog = parse_dialogmelding(root)
            received = ReceivedMessage(
                dialog.msg_type, dialog.gen_date, dialog.msg_id, dialog.sender, dialog.receiver
            )
            return Accepted(dialog, received, message_key(dialog.sender, dialog.msg_id))
        if is_epikrise(root):
            epikrise = replace(parse_epikrise(root), source=data)
            received = ReceivedMessage(
                epikrise.msg_type, epikrise.generated, epikrise.msg_id, epikrise.sender, epikrise.receiver
            )
            key = message_key(epikrise.sender, epikrise.msg_id)
            return Accepted(epikrise, received, key, unmapped_epikrise(root))
        if is_plo(root):
            plo = parse_plo(root)
            received = ReceivedMessage(plo.msg_type, plo.gen_date, plo.msg_id, plo.sender, plo.receiver)
            return Accepted(plo, received, message_key(plo.sender, plo.msg_id))
        referral = parse_henvisning_tree(root)
    except KithError as error:
        raise Rejected(error, envelope(root), _HTTP_STATUS.get(error.code, 422)) from None
    received = ReceivedMessage.from_referral(referral)
    if x.local(root) == "Message":
        unmapped = henvisning_v1.unmapped_v1(root)
    else:
        unmapped = henvisning_v2.unmapped_v2(msghead.parse_msghead(root))
    return Accepted(referral, received, message_key(referral.sender, referral.msg_id), unmapped)


def xml_payload(title: str, xml: bytes) -> Json:
    """A Communication.payload holding a KITH message (or receipt) as sent or received."""
    return {
        "contentAttachment": {
            "contentType": "application/xml",
            "title": title,
            "data": base64.b64encode(xml).decode("ascii"),
        }
    }


def message_key(sender: Organisation, msg_id: str) -> str:
    return f"{sender_key(sender)}/{msg_id}"


def message_identifier(key: str) -> Json:
    return {"system": MSG_ID_SYSTEM, "value": key}


@dataclass(frozen=True)
class Anchor:
    """What the record of a received message is about: the resource the message changed, its patient and
    the parties, as references valid inside the transaction."""

    about: str
    subject: Json
    sender: Json | None = None
    recipients: tuple[Json, ...] = ()


def entry_anchor(entry: Json, *, sender: Json | None = None, recipients: list[Json] | None = None) -> Anchor:
    """The anchor of a transaction entry: its fullUrl, else the literal reference of a PUT by id."""
    resource = entry["resource"]
    about = entry.get("fullUrl") or entry["request"]["url"]
    return Anchor(about, resource["subject"], sender, tuple(recipients or ()))


def referral_anchor(bundle: Json) -> Anchor:
    """A referral's record is about its ServiceRequest, from the requester to the performer."""
    entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest")
    sr = entry["resource"]
    return entry_anchor(entry, sender=sr.get("requester"), recipients=sr.get("performer"))


def record_entry(anchor: Anchor, accepted: Accepted, apprec: bytes, received_at: datetime) -> Json:
    """The transaction entry that records the message, created once per MsgId (a concurrent repeat finds it).

    It points at what the message changed and at the patient through the transaction's own references, so
    it lands in the patient's compartment and under the access policy like the change itself.
    """
    identifier = message_identifier(accepted.key)
    received = accepted.received
    record: Json = {
        "resourceType": "Communication",
        "identifier": [identifier, {"system": RECEIVED_MSG_ID_SYSTEM, "value": received.msg_id}],
        "status": "completed",
        "category": [{"coding": [RECEIVED_CATEGORY]}],
        "topic": {"coding": [{"system": MESSAGE_TYPE_SYSTEM, **f.coding(received.msg_type)}]},
        "subject": anchor.subject,
        "about": [{"reference": anchor.about}],
        "sent": f.fhir_datetime(received.issue_date),
        "received": f.fhir_datetime(received_at),
        "payload": [xml_payload(APPREC_TITLE, apprec)],
    }
    if anchor.sender is not None:
        record["sender"] = anchor.sender
    if anchor.recipients:
        record["recipient"] = list(anchor.recipients)
    return {
        "resource": record,
        "request": {"method": "POST", "url": "Communication", "ifNoneExist": f.search_identifier(identifier)},
    }


def stored_apprec(record: Json) -> bytes | None:
    """The AppRec kept in a message record, for answering a repeat of the message."""
    for payload in record.get("payload", []):
        attachment = payload.get("contentAttachment", {})
        if attachment.get("title") == APPREC_TITLE and "data" in attachment:
            return base64.b64decode(attachment["data"])
    return None


def delivered(record: Json, apprec: AppRec, apprec_xml: bytes) -> Json:
    """A sent message's record once its receiver's AppRec is in: completed (status 1 or 3) or not-done
    (2, avvist) with the error codes as the reason; the AppRec is kept beside the message. One that the
    transport had given up (no AppRec after its last attempt) loses that reason: the AppRec came after all."""
    updated = dict(record)
    updated.pop("statusReason", None)
    refused = apprec.status is AppRecStatus.REJECTED
    updated["status"] = "not-done" if refused else "completed"
    updated["received"] = f.fhir_datetime(apprec.gen_date)
    if apprec.errors:
        codes = ", ".join(f"{e.code} {e.description or ''}".strip() for e in apprec.errors)
        updated["statusReason"] = {"text": f"AppRec {apprec.status.value}: {codes}"}
    payload = [
        p for p in record.get("payload", []) if p.get("contentAttachment", {}).get("title") != APPREC_TITLE
    ]
    payload.append(xml_payload(APPREC_TITLE, apprec_xml))
    updated["payload"] = payload
    return updated


def update_entry(resource: Json) -> Json:
    """A transaction entry that PUTs a stored resource, guarded by the version it was read at (a concurrent
    change is a 412)."""
    return {
        "resource": resource,
        "request": {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
            "ifMatch": f'W/"{resource["meta"]["versionId"]}"',
        },
    }


def outgoing_message(
    msg_type: Coded,
    msg_id: str,
    title: str,
    xml: bytes,
    *,
    based_on: str,
    about: str,
    subject: Json | None,
    sender: Json | None = None,
    recipients: Sequence[Json] = (),
    part_of: str | None = None,
) -> Json:
    """The Communication that holds a message to send (status `preparation`) until the gateway has
    delivered it; the receiver's AppRec, posted to the intake, marks it delivered (`delivered`). `part_of`:
    the record of the message this one follows (a change or cancellation of a document sent before)."""
    record: Json = {
        "resourceType": "Communication",
        "identifier": [{"system": SENT_MSG_ID_SYSTEM, "value": msg_id}],
        "basedOn": [{"reference": based_on}],
        "status": "preparation",
        "category": [{"coding": [OUTGOING_CATEGORY]}],
        "topic": {"coding": [{"system": MESSAGE_TYPE_SYSTEM, **f.coding(msg_type)}]},
        "about": [{"reference": about}],
        "payload": [xml_payload(title, xml)],
    }
    if subject is not None:
        record["subject"] = subject
    if sender is not None:
        record["sender"] = sender
    if recipients:
        record["recipient"] = list(recipients)
    if part_of is not None:
        record["partOf"] = [{"reference": part_of}]
    return record
