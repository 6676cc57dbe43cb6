"""What every PLO mapping shares: the message's parties and patient as transaction entries, the keys, and
back from FHIR the message's envelope (`envelope_from`: what the MsgHead said, kept on a resource)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.intake import message_key
from app.adapters.kith.model import PATIENT_ID_TYPES, Organisation, OriginalReference, Patient
from app.adapters.kith.to_fhir import BundleBuilder, sender_key
from app.adapters.plo.model import Family, Kind, PloMessage, PloVersion

Json = dict[str, Any]
NS = f.NS  # http://helsebro.no/fhir/NamingSystem
CS = "http://helsebro.no/fhir/CodeSystem"
EXT_PLO = f"{f.SD}/plo-message"  # what the MsgHead and document said, so the message can be rebuilt


def check_patient(msg: PloMessage) -> Patient:
    """The MsgHead patient with an identifier of a patient type, else E30/E36 (the record must be in a
    patient's compartment)."""
    if msg.patient is None:
        raise KithError(AppRecError.PATIENT_FNR_MISSING, "the MsgHead names no patient")
    if not any(i.type.code in PATIENT_ID_TYPES for i in msg.patient.idents):
        code = (
            AppRecError.PATIENT_INFO_INSUFFICIENT if msg.patient.idents else AppRecError.PATIENT_FNR_MISSING
        )
        raise KithError(code, "patient identifier is missing or of an unknown type")
    return msg.patient


def patient_key(patient: Patient) -> str:
    ident = next(i for i in patient.idents if i.type.code in PATIENT_ID_TYPES)
    return f"{ident.type.code}:{ident.id}"


def org_key(org: Organisation) -> str:
    return sender_key(org)


@dataclass
class Parties:
    b: BundleBuilder
    subject: Json
    sender: r.Party
    receiver: r.Party
    sender_top: str | None  # fullUrl of the sender's own (top level) Organization
    receiver_top: str | None

    @property
    def sender_ref(self) -> Json | None:
        url = self.sender.roles[-1] if self.sender.roles else self.sender.organization
        return None if url is None else f.reference(url)

    @property
    def receiver_ref(self) -> Json | None:
        return None if self.receiver.organization is None else f.reference(self.receiver.organization)


def _top(b: BundleBuilder, org: Organisation, role: str) -> str | None:
    return b.url(f"{role}-organisation-0") if (org.name is not None or org.idents) else None


def parties(msg: PloMessage, key: str) -> Parties:
    patient = check_patient(msg)
    b = BundleBuilder(key)
    sender = b.organisation(msg.sender, "sender")
    receiver = b.organisation(msg.receiver, "receiver")
    assigner = (
        f.reference(sender.organization, msg.sender.name) if sender.organization else {"display": "Avsender"}
    )
    subject = f.reference(b.patient(patient, assigner))
    return Parties(
        b, subject, sender, receiver, _top(b, msg.sender, "sender"), _top(b, msg.receiver, "receiver")
    )


def message_ext(msg: PloMessage) -> Json:
    parts = [
        f.ext("version", "Code", msg.version.value),
        f.ext("family", "Code", msg.family.value),
        f.ext("kind", "Code", msg.kind.value),
        f.ext("msgId", "String", msg.msg_id),
        f.ext("conversationId", "String", msg.conversation_id),
        f.ext("messageType", "CodeableConcept", f.cc(msg.msg_type)),
        f.ext("generated", "DateTime", f.fhir_datetime(msg.gen_date)),
    ]
    if msg.conversation is not None:
        parts.append(f.ext("parentId", "String", msg.conversation.parent_id))
    if msg.issue_date is not None:
        parts.append(f.ext("issued", "DateTime", f.fhir_datetime(msg.issue_date)))
    if msg.logistics is not None:
        parts.append(f.ext("logistics", "Code", msg.logistics.value))
    if msg.document is not None:
        parts.append(f.ext("document", "String", msg.document))
    return f.complex_ext(EXT_PLO, parts)


def party_exts(p: Parties) -> list[Json]:
    """The sender and receiver as the other families keep them (`kith-party`), so the MsgHead can be
    rebuilt with their departments and people (`kith.from_fhir._party_from`)."""
    return [r._party_ext(p.sender), r._party_ext(p.receiver)]


def record_key(msg: PloMessage) -> str:
    return message_key(msg.sender, msg.msg_id)


def is_cancel(msg: PloMessage) -> bool:
    return msg.kind is Kind.CANCEL


SD_EVENT = f"{f.SD}/plo-event"  # TidsfestetHendelse: code, time, estimated, description, remark


def ext_part(ext: Json | None, name: str, value_type: str) -> Any:
    """One part of a complex extension (`ext:plo-message`, `ext:plo-event` ...), by name."""
    return next(
        (e.get(f"value{value_type}") for e in (ext or {}).get("extension", []) if e.get("url") == name), None
    )


def envelope_from(source: Json, subject: Any, resolve: ff.Resolve) -> PloMessage:
    """The message a resource keeps, as far as the MsgHead and the document's kind go: `ext:plo-message`
    (version, family, kind, MsgId, conversation (`conversationId`, `parentId`), type, GenDate, IssueDate),
    the sender and receiver (`kith-party`) and the patient (`subject`, a Reference). The logistics
    element or document and the content are the caller's; no kept MsgId or GenDate is not a message."""
    ext = next(iter(f.exts(source, EXT_PLO)), None)
    msg_id = ext_part(ext, "msgId", "String")
    generated = f.from_fhir_datetime(ext_part(ext, "generated", "DateTime"))
    if ext is None or msg_id is None or generated is None:
        what = source.get("resourceType", "resource")
        raise KithError(AppRecError.NOT_VALID, f"the {what} keeps no PLO message (MsgId, GenDate)")
    conversation_id = ext_part(ext, "conversationId", "String")
    parent_id = ext_part(ext, "parentId", "String")
    conversation = None
    if parent_id is not None and conversation_id is not None:
        conversation = OriginalReference(parent_id=parent_id, conversation_id=conversation_id)
    ref = f.ref_of(subject)
    patient = None if ref is None else resolve(ref)
    return PloMessage(
        version=PloVersion(ext_part(ext, "version", "Code")),
        family=Family(ext_part(ext, "family", "Code")),
        kind=Kind(ext_part(ext, "kind", "Code")),
        msg_id=msg_id,
        msg_type=f.coded(ext_part(ext, "messageType", "CodeableConcept")),
        gen_date=generated,
        sender=ff._party_from(source, "sender", resolve) or Organisation(),
        receiver=ff._party_from(source, "receiver", resolve) or Organisation(),
        patient=None if patient is None else ff._patient(patient, None, False),
        issue_date=f.from_fhir_datetime(ext_part(ext, "issued", "DateTime")),
        conversation=conversation,
    )
