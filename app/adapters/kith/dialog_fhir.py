"""Dialogmelding 1.0/1.1 (dialogmelding.Dialogmelding) <-> FHIR R4: pure, deterministic.

`dialogmelding_to_bundle(msg)` gives the transaction that stores a received Dialogmelding and the `Anchor`
of its record; `dialogmelding_from_bundle(bundle)` reads the model back (model -> Bundle -> model is exact).
`link_to_conversation` threads the new resources to the stored records of the messages the Dialogmelding
answers (found by `dialog_store`).

| message part | FHIR |
| --- | --- |
| each `Foresporsel` of a request | a `CommunicationRequest` |
| each `Notat` (answer, note, deviation, referral status) | a `Communication` |
| sender, receiver, copy receivers | Organization (+ departments), Practitioner, PractitionerRole as for a referral |
| patient (MsgHead) | Patient, created when absent (fødselsnummer, D-nummer ...) |
| role persons (RollerRelatertNotat) | Practitioner, named in `ext:kith-dialog-role` |
| attachments (MsgHead documents after the Dialogmelding) | `payload.contentAttachment` of the first resource |

Shared resources are created once by their natural key (see to_fhir.py); the message's own resources are
kept by `kith-document-part` `<sender key>/<MsgId>#<part>`, so the same message gives the same Bundle.
"""

from __future__ import annotations

from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import from_fhir as ff
from app.adapters.kith import msghead
from app.adapters.kith.dialogmelding import (
    TYPE_BY_KIND,
    DialogKind,
    Dialogmelding,
    DialogVersion,
    Note,
    NoteRole,
    Request,
)
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.intake import RECEIVED_MSG_ID_SYSTEM, SENT_MSG_ID_SYSTEM, Anchor, message_key
from app.adapters.kith.model import PATIENT_ID_TYPES, Attachment, Coded, Organisation, OriginalReference
from app.adapters.kith.to_fhir import (
    EXT_COMPRESSION,
    EXT_FILE_REFERENCE,
    BundleBuilder,
    attachment_json,
    sender_key,
)

Json = dict[str, Any]
DIALOG_KIND_SYSTEM = "http://helsebro.no/fhir/CodeSystem/kith-dialog"
CONVERSATION_SYSTEM = f"{f.NS}/kith-conversation"  # RefToConversation, else the first message's MsgId
DIALOG_DOCUMENT_SYSTEM = f"{f.NS}/kith-dialog-document-id"  # DokIdNotat / DokIdForesp
EXT_DIALOG = f"{f.SD}/kith-dialog"  # the message: version, MsgId, type, times, conversation, case type
EXT_ROLE = f"{f.SD}/kith-dialog-role"  # RollerRelatertNotat
EXT_REQUEST = f"{f.SD}/kith-dialog-request"  # Foresporsel (what is not in native elements)
EXT_NOTE_DATE = f"{f.SD}/kith-note-date"
EXT_REFDOC_TYPE = f"{f.SD}/kith-refdoc-type"
EXT_REFDOC_ID = f"{f.SD}/kith-refdoc-id"
COPY_ROLE = "copy"


def kind_coding(kind: DialogKind) -> Json:
    return {"system": DIALOG_KIND_SYSTEM, "code": kind.value, "display": kind.display}


def conversation_id(msg: Dialogmelding) -> str:
    """The conversation a message belongs to: its RefToConversation, or it starts one with its MsgId."""
    return msg.referral.conversation_id if msg.referral is not None else msg.msg_id


# --- model -> FHIR ------------------------------------------------------------------------------------------


def _c(name: str, value: Coded | None) -> list[Json]:
    return [] if value is None else [f.ext(name, "CodeableConcept", f.cc(value))]


def _s(name: str, value: str | None) -> list[Json]:
    return [] if value is None else [f.ext(name, "String", value)]


def _d(name: str, value: Any) -> list[Json]:
    return [] if value is None else [f.ext(name, "Date", value.isoformat())]


def _message_ext(msg: Dialogmelding) -> Json:
    parts = [
        f.ext("version", "Code", msg.version.value),
        f.ext("msgId", "String", msg.msg_id),
        f.ext("messageType", "CodeableConcept", f.cc(msg.msg_type)),
        f.ext("generated", "DateTime", f.fhir_datetime(msg.gen_date)),
    ]
    if msg.issue_date is not None:
        parts.append(f.ext("issued", "DateTime", f.fhir_datetime(msg.issue_date)))
    if msg.referral is not None:
        parts += [
            f.ext("parentId", "String", msg.referral.parent_id),
            f.ext("conversationId", "String", msg.referral.conversation_id),
        ]
    return f.complex_ext(
        EXT_DIALOG, parts + _c("caseType", msg.case_type) + _s("caseText", msg.case_type_text)
    )


class _DialogBundle:
    def __init__(self, msg: Dialogmelding) -> None:
        self.msg = msg
        self.b = BundleBuilder(message_key(msg.sender, msg.msg_id))

    def role_ext(self, role: NoteRole, part: str) -> Json:
        parts = _c("role", role.role) + _c("roleToPatient", role.role_to_patient)
        if role.professional is not None:
            url = self.b.practitioner(role.professional, part)
            parts.append(f.ext("professional", "Reference", f.reference(url)))
        return f.complex_ext(EXT_ROLE, parts)

    def request_parts(self, req: Request, part: str, *, quoted: bool) -> list[Json]:
        """The request's fields; a quoted request (in an answer) has them all, a CommunicationRequest only
        those its own elements do not hold."""
        parts: list[Json] = []
        if quoted:
            parts += _c("type", req.type) + _s("question", req.question) + _c("purpose", req.purpose)
            parts += _s("justification", req.justification) + _d("fromDate", req.from_date)
            parts += _d("toDate", req.to_date) + _s("documentId", req.document_id)
            parts += [
                {**self.role_ext(role, f"{part}-role-{n}"), "url": "role"} for n, role in enumerate(req.roles)
            ]
        parts += _s("subject", req.subject) + _c("urgency", req.urgency)
        parts += [f.ext("recordInfoType", "CodeableConcept", f.cc(c)) for c in req.record_info_types]
        return parts + _c("codedInfo", req.coded_info)

    def common(self, resource: Json, roles: tuple[NoteRole, ...], part: str, parties: list[Json]) -> None:
        extensions = [_message_ext(self.msg), *parties]
        extensions += [self.role_ext(role, f"{part}-role-{n}") for n, role in enumerate(roles)]
        resource["extension"] = extensions + resource.get("extension", [])


def _attachment(att: Attachment) -> Json:
    out = attachment_json(att)
    extra = [f.ext(EXT_REFDOC_TYPE, "CodeableConcept", f.cc(att.msg_type))]
    if att.id is not None:
        extra.append(f.ext(EXT_REFDOC_ID, "String", att.id))
    out["extension"] = extra + out.get("extension", [])
    return {"contentAttachment": out}


def _identifiers(document_id: str | None) -> list[Json]:
    return [] if document_id is None else [{"system": DIALOG_DOCUMENT_SYSTEM, "value": document_id}]


def _check_patient(msg: Dialogmelding) -> None:
    if msg.patient is None:
        raise KithError(AppRecError.PATIENT_FNR_MISSING, "the MsgHead names no patient")
    if not any(i.type.code in PATIENT_ID_TYPES for i in msg.patient.idents):
        code = (
            AppRecError.PATIENT_INFO_INSUFFICIENT if msg.patient.idents else AppRecError.PATIENT_FNR_MISSING
        )
        raise KithError(code, "patient identifier is missing or of an unknown type")


def dialogmelding_to_bundle(msg: Dialogmelding) -> tuple[Json, Anchor]:
    """The transaction that stores a Dialogmelding, and the anchor of its record (the first request or note;
    a message without a patient that can be identified is refused: E30/E36)."""
    _check_patient(msg)
    assert msg.patient is not None
    d = _DialogBundle(msg)
    b = d.b
    sender = b.organisation(msg.sender, "sender")
    receiver = b.organisation(msg.receiver, "receiver")
    parties = [r._party_ext(sender), r._party_ext(receiver)]
    copies: list[Json] = []
    for n, other in enumerate(msg.copy_to):
        party = b.organisation(other.organisation, f"copy-{n}")
        ext = r._party_ext(party)
        ext["extension"] = [
            f.ext("role", "Code", COPY_ROLE),
            *_c("roleReceiver", other.role),
            *ext["extension"][1:],
        ]
        parties.append(ext)
        if party.organization is not None:
            copies.append(f.reference(party.organization))
    assigner = (
        f.reference(sender.organization, msg.sender.name) if sender.organization else {"display": "Avsender"}
    )
    subject = f.reference(b.patient(msg.patient, assigner))
    from_url = sender.roles[-1] if sender.roles else sender.organization
    from_ref = None if from_url is None else f.reference(from_url)
    to_refs = ([f.reference(receiver.organization)] if receiver.organization else []) + copies
    when = f.fhir_datetime(msg.issue_date or msg.gen_date)
    conversation = {"system": CONVERSATION_SYSTEM, "value": conversation_id(msg)}
    kind = kind_coding(msg.kind)
    attachments = [_attachment(a) for a in msg.attachments]
    urls: list[str] = []
    for n, req in enumerate(msg.requests):
        part = f"request-{n}"
        out: Json = {"resourceType": "CommunicationRequest"}
        d.common(out, req.roles, part, parties)
        out["extension"].append(f.complex_ext(EXT_REQUEST, d.request_parts(req, part, quoted=False)))
        out["identifier"] = _identifiers(req.document_id)
        out |= {
            "groupIdentifier": conversation,
            "status": "active",
            "category": [{"coding": [kind]}, f.cc(req.type)],
        }
        if req.urgency is not None and (priority := r.fhir_priority(req.urgency)) is not None:
            out["priority"] = priority
        out["subject"] = subject
        payload = [{"contentString": req.question}] if req.question else []
        if payload or (attachments and n == 0):
            out["payload"] = payload + (attachments if n == 0 else [])
        if req.from_date is not None or req.to_date is not None:
            period = {"start": req.from_date, "end": req.to_date}
            out["occurrencePeriod"] = {k: v.isoformat() for k, v in period.items() if v is not None}
        out["authoredOn"] = when
        if from_ref is not None:
            out["requester"] = from_ref
        out["recipient"] = to_refs
        if req.purpose is not None:
            out["reasonCode"] = [f.cc(req.purpose)]
        if req.justification:
            out["note"] = [{"text": req.justification}]
        urls.append(b.add(part, out))
    for n, note in enumerate(msg.notes):
        part = f"note-{n}"
        out = {"resourceType": "Communication"}
        d.common(out, note.roles, part, parties)
        out["extension"] += _d(EXT_NOTE_DATE, note.note_date)
        if note.request is not None:
            quoted = d.request_parts(note.request, f"{part}-request", quoted=True)
            out["extension"].append(f.complex_ext(EXT_REQUEST, quoted))
        out["identifier"] = [*_identifiers(note.document_id), conversation]
        out |= {
            "status": "completed",
            "category": [{"coding": [kind]}, f.cc(note.status)],
            "subject": subject,
        }
        if note.topic:
            out["topic"] = {"text": note.topic}
        out["sent"] = when
        out["recipient"] = to_refs
        if from_ref is not None:
            out["sender"] = from_ref
        payload = [{"contentString": note.text}] if note.text else []
        if payload or (attachments and n == 0):
            out["payload"] = payload + (attachments if n == 0 else [])
        if note.remark:
            out["note"] = [{"text": note.remark}]
        urls.append(b.add(part, out))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": b.entries}
    return bundle, Anchor(urls[0], subject, from_ref, tuple(to_refs))


def link_to_conversation(bundle: Json, parent: Json | None, first: Json | None) -> None:
    """Thread a Dialogmelding's resources to the stored records of the message it answers (`parent`,
    RefToParent) and of the conversation's first message (`first`, RefToConversation): a Communication is
    `inResponseTo` the parent's record, `partOf` the first one's, `basedOn` the requests the parent's record
    is about and `about` what else it is about (a referral's ServiceRequest ...); a CommunicationRequest is
    `about` them all."""
    parent_about = [a for a in (parent or {}).get("about", []) if isinstance(a.get("reference"), str)]
    requests = [a for a in parent_about if a["reference"].startswith("CommunicationRequest/")]
    others = [a for a in parent_about if not a["reference"].startswith("CommunicationRequest/")]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if f.exts(resource, EXT_DIALOG) == []:
            continue
        if resource["resourceType"] == "Communication":
            if parent is not None:
                resource["inResponseTo"] = [{"reference": f"Communication/{parent['id']}"}]
            if first is not None:
                resource["partOf"] = [{"reference": f"Communication/{first['id']}"}]
            if requests:
                resource["basedOn"] = requests
            if others:
                resource["about"] = others
        else:
            about = [{"reference": f"Communication/{parent['id']}"}] if parent is not None else []
            if about or parent_about:
                resource["about"] = about + parent_about


# --- FHIR -> model ------------------------------------------------------------------------------------------


def _coded(ext: Any, name: str) -> Coded | None:
    return f.opt_coded(f.ext_value(ext, name, "CodeableConcept"))


def _str(ext: Any, name: str) -> str | None:
    value = f.ext_value(ext, name, "String")
    return value if isinstance(value, str) else None


def _date(ext: Any, name: str) -> Any:
    return f.from_fhir_date(f.ext_value(ext, name, "Date"))


def _roles(node: Any, url: str, resolve: ff.Resolve) -> tuple[NoteRole, ...]:
    out = []
    for ext in f.exts(node, url):
        ref = f.ref_of(f.ext_value(ext, "professional", "Reference"))
        out.append(
            NoteRole(
                role=_coded(ext, "role"),
                role_to_patient=_coded(ext, "roleToPatient"),
                professional=None if ref is None else ff._professional(resolve(ref)),
            )
        )
    return tuple(out)


def _request_rest(ext: Any) -> dict[str, Any]:
    return {
        "subject": _str(ext, "subject"),
        "urgency": _coded(ext, "urgency"),
        "record_info_types": tuple(
            f.coded(e.get("valueCodeableConcept")) for e in f.exts(ext, "recordInfoType")
        ),
        "coded_info": _coded(ext, "codedInfo"),
    }


def _quoted_request(ext: Any, resolve: ff.Resolve) -> Request:
    return Request(
        type=_coded(ext, "type") or Coded(),
        question=_str(ext, "question"),
        purpose=_coded(ext, "purpose"),
        justification=_str(ext, "justification"),
        from_date=_date(ext, "fromDate"),
        to_date=_date(ext, "toDate"),
        document_id=_str(ext, "documentId"),
        roles=_roles(ext, "role", resolve),
        **_request_rest(ext),
    )


def _document_id(resource: Json) -> str | None:
    found = [
        i.get("value") for i in resource.get("identifier", []) if i.get("system") == DIALOG_DOCUMENT_SYSTEM
    ]
    return found[0] if found else None


def _text(resource: Json) -> str | None:
    return next((p["contentString"] for p in resource.get("payload", []) if "contentString" in p), None)


def _note_text(resource: Json) -> str | None:
    notes = resource.get("note") or [{}]
    text = notes[0].get("text")
    return text if isinstance(text, str) else None


def _request(cr: Json, resolve: ff.Resolve) -> Request:
    period = cr.get("occurrencePeriod") or {}
    return Request(
        type=f.coded((cr.get("category") or [{}, {}])[1]),
        question=_text(cr),
        purpose=f.opt_coded((cr.get("reasonCode") or [None])[0]),
        justification=_note_text(cr),
        from_date=f.from_fhir_date(period.get("start")),
        to_date=f.from_fhir_date(period.get("end")),
        document_id=_document_id(cr),
        roles=_roles(cr, EXT_ROLE, resolve),
        **_request_rest(next(iter(f.exts(cr, EXT_REQUEST)), None)),
    )


def _note(comm: Json, resolve: ff.Resolve) -> Note:
    quoted = next(iter(f.exts(comm, EXT_REQUEST)), None)
    return Note(
        status=f.coded((comm.get("category") or [{}, {}])[1]),
        text=_text(comm),
        topic=(comm.get("topic") or {}).get("text"),
        note_date=f.from_fhir_date(f.ext_value(comm, EXT_NOTE_DATE, "Date")),
        roles=_roles(comm, EXT_ROLE, resolve),
        remark=_note_text(comm),
        document_id=_document_id(comm),
        request=None if quoted is None else _quoted_request(quoted, resolve),
    )


def _attachments(resource: Json) -> tuple[Attachment, ...]:
    out = []
    for payload in resource.get("payload", []):
        a = payload.get("contentAttachment")
        if a is None:
            continue
        out.append(
            Attachment(
                msg_type=f.coded(f.ext_value(a, EXT_REFDOC_TYPE, "CodeableConcept")),
                mime_type=a.get("contentType"),
                description=a.get("title"),
                issue_date=f.from_fhir_datetime(a.get("creation")),
                id=f.ext_value(a, EXT_REFDOC_ID, "String"),
                compression=f.opt_coded(f.ext_value(a, EXT_COMPRESSION, "CodeableConcept")),
                content_base64=a.get("data"),
                file_reference=f.ext_value(a, EXT_FILE_REFERENCE, "String"),
            )
        )
    return tuple(out)


def _copies(resource: Json, resolve: ff.Resolve) -> tuple[msghead.OtherReceiver, ...]:
    out = []
    for ext in f.exts(resource, r.EXT_PARTY):
        if f.ext_value(ext, "role", "Code") != COPY_ROLE:
            continue
        refs = [f.ref_of(e.get("valueReference")) for e in f.exts(ext, "professional")]
        org = ff._party(
            f.ref_of(f.ext_value(ext, "organization", "Reference")), [x for x in refs if x], resolve
        )
        out.append(msghead.OtherReceiver(role=_coded(ext, "roleReceiver") or Coded(), organisation=org))
    return tuple(out)


def dialogmelding_from_resources(resources: list[Json], resolve: ff.Resolve) -> Dialogmelding:
    """The Dialogmelding of its stored requests and notes (in message order), people resolved by `resolve`."""
    content = [x for x in resources if f.exts(x, EXT_DIALOG)]
    if not content:
        raise ValueError("no resource of a Dialogmelding")
    first = content[0]
    head = f.exts(first, EXT_DIALOG)[0]
    parent, conversation = _str(head, "parentId"), _str(head, "conversationId")
    subject = f.ref_of(first.get("subject"))
    generated = f.from_fhir_datetime(f.ext_value(head, "generated", "DateTime"))
    assert generated is not None
    return Dialogmelding(
        msg_id=_str(head, "msgId") or "",
        gen_date=generated,
        sender=ff._party_from(first, "sender", resolve) or Organisation(),
        receiver=ff._party_from(first, "receiver", resolve) or Organisation(),
        notes=tuple(_note(x, resolve) for x in content if x["resourceType"] == "Communication"),
        msg_type=_coded(head, "messageType") or Coded(),
        referral=None if parent is None or conversation is None else OriginalReference(parent, conversation),
        patient=None if subject is None else ff._patient(resolve(subject), None, False),
        copy_to=_copies(first, resolve),
        issue_date=f.from_fhir_datetime(f.ext_value(head, "issued", "DateTime")),
        requests=tuple(_request(x, resolve) for x in content if x["resourceType"] == "CommunicationRequest"),
        version=DialogVersion(f.ext_value(head, "version", "Code")),
        case_type=_coded(head, "caseType"),
        case_type_text=_str(head, "caseText"),
        attachments=_attachments(first),
    )


def dialogmelding_from_bundle(bundle: Json) -> Dialogmelding:
    resources = [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    return dialogmelding_from_resources(resources, ff.bundle_resolver(bundle))


# --- a Communication written on FHIR -> a Dialogmelding to send ---------------------------------------------

SENDABLE_KINDS = frozenset({DialogKind.ANSWER, DialogKind.NOTE, DialogKind.DEVIATION})
ATTACHMENT_TYPE = Coded(code="A", display="Vedlegg")


def dialog_kind(resource: Json) -> DialogKind | None:
    """The dialogue kind a resource's category names (`DIALOG_KIND_SYSTEM`), if any."""
    for concept in resource.get("category", []):
        for coding in concept.get("coding", []):
            if coding.get("system") == DIALOG_KIND_SYSTEM and coding.get("code") in set(DialogKind):
                return DialogKind(coding["code"])
    return None


def her_recipient(comm: Json, resolve: ff.Resolve) -> str | None:
    """The first recipient that is an Organization with a HER-id (a receiver on the health network)."""
    for recipient in comm.get("recipient", []):
        ref = f.ref_of(recipient)
        org = resolve(ref) if ref and ref.startswith("Organization/") else None
        if org is not None and any(i.type.code == "HER" for i in f.idents(org.get("identifier"))):
            return ref
    return None


def _conversation(comm: Json, resolve: ff.Resolve) -> OriginalReference | None:
    """The message a Communication answers (`inResponseTo`): a Dialogmelding received here (its MsgId and
    conversation), or the record of a message received or sent (its MsgId starts the conversation)."""
    for link in comm.get("inResponseTo", []):
        ref = f.ref_of(link)
        answered = resolve(ref) if ref else None
        if answered is None:
            continue
        head = next(iter(f.exts(answered, EXT_DIALOG)), None)
        if head is not None and (msg_id := _str(head, "msgId")):
            return OriginalReference(msg_id, _str(head, "conversationId") or msg_id)
        for identifier in answered.get("identifier", []):
            if identifier.get("system") in (RECEIVED_MSG_ID_SYSTEM, SENT_MSG_ID_SYSTEM):
                return OriginalReference(identifier["value"], identifier["value"])
    return None


def dialogmelding_from_communication(
    comm: Json, resolve: ff.Resolve, *, msg_id: str, generated: Any, own: Organisation
) -> Dialogmelding:
    """A Communication written on FHIR (an answer, note or deviation to an organisation with a HER-id) as the
    Dialogmelding 1.1 that carries it. KithError when it cannot be one (no patient with a fødselsnummer or
    another patient id, no recipient with a HER-id)."""
    kind = dialog_kind(comm) or DialogKind.NOTE
    receiver_ref = her_recipient(comm, resolve)
    if receiver_ref is None:
        raise KithError(AppRecError.RECEIVER_UNKNOWN, "no recipient is an Organization with a HER-id")
    subject = f.ref_of(comm.get("subject"))
    patient = None if subject is None else ff._patient(resolve(subject), None, True)
    sender = ff._native_party(comm["sender"], resolve) if comm.get("sender") else own
    if sender.name is None and not sender.idents and sender.professional is None:
        sender = own
    if sender_key(sender) == "-:-":
        raise KithError(
            AppRecError.OTHER, "the sender has no HER-id (Communication.sender, else KITH_RECEIVER_HER_ID)"
        )
    themes = [c for c in comm.get("category", []) if dialog_kind({"category": [c]}) is None]
    texts = [p["contentString"] for p in comm.get("payload", []) if p.get("contentString")]
    attachments = tuple(
        Attachment(
            msg_type=ATTACHMENT_TYPE,
            mime_type=a.get("contentType"),
            description=a.get("title"),
            issue_date=f.from_fhir_datetime(a.get("creation")),
            content_base64=a.get("data"),
            file_reference=None if a.get("data") else a.get("url"),
        )
        for p in comm.get("payload", [])
        if (a := p.get("contentAttachment")) is not None and (a.get("data") or a.get("url"))
    )
    note = Note(
        status=f.coded(themes[0]) if themes else Coded(display=kind.display),
        text="\n\n".join(texts) or None,
        topic=(comm.get("topic") or {}).get("text"),
        note_date=generated.date(),
        remark=_note_text(comm),
    )
    msg = Dialogmelding(
        msg_id=msg_id,
        gen_date=generated,
        sender=sender,
        receiver=ff._party(receiver_ref, [], resolve),
        notes=(note,),
        msg_type=TYPE_BY_KIND[kind],
        referral=_conversation(comm, resolve),
        patient=patient,
        issue_date=generated,
        version=DialogVersion.V1_1,
        attachments=attachments,
    )
    _check_patient(msg)
    return msg
