"""Dialogmelding 1.0 (`http://www.kith.no/xmlstds/dialog/2006-10-11`) and 1.1
(`http://www.kith.no/xmlstds/dialog/2013-01-23`) in MsgHead: parse and build.

One model for every use of the standard:

- helsefaglig dialog (MsgHead type DIALOG_HELSEFAGLIG in 1.1; DIALOG_FORESPORSEL, DIALOG_SVAR, DIALOG_AVVIK
  and DIALOG_NOTAT in 1.0): a request (`Foresporsel`), an answer (a `Notat` quoting the `Foresporsel` it
  answers), a notification of deviation or a note (`Notat`), see `Dialogmelding.kind`;
- status på henvisning (DIALOG_STATUS_HENVISNING), as in the official sample
  "Status_paa_henvisning-InnkaltEtterViderehenvisning": ConversationRef pointing at the referral
  (RefToParent) and the conversation's first referral (RefToConversation), and one `Notat` whose `TemaKodet`
  (Volven 9148) is the status and whose `TekstNotatInnhold` explains it.

The conversation is MsgHead's `ConversationRef` (RefToParent: the message answered, RefToConversation: the
conversation's first message). Attachments are the MsgHead documents after the Dialogmelding (base64 or a
file reference). 1.1 added `EmneSporsmal` and `KodetOpplysning` to a request, repeats `TypeJournalinfo`
and lets a role name no person; they are written only in 1.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    OID_REFERRAL_STATUS,
    Attachment,
    Coded,
    HealthProfessional,
    Organisation,
    OriginalReference,
    Patient,
)

NS_V1_0 = "http://www.kith.no/xmlstds/dialog/2006-10-11"
NS_V1_1 = "http://www.kith.no/xmlstds/dialog/2013-01-23"
NS = NS_V1_1
NS_FK1 = "http://www.kith.no/xmlstds/felleskomponent1"
TYPE_STATUS = Coded(code="DIALOG_STATUS_HENVISNING", display="Status på henvisning")
TYPE_HELSEFAGLIG = Coded(code="DIALOG_HELSEFAGLIG", display="Helsefaglig dialog")
TYPE_REQUEST = Coded(code="DIALOG_FORESPORSEL", display="Forespørsel")
TYPE_ANSWER = Coded(code="DIALOG_SVAR", display="Svar på forespørsel")
TYPE_DEVIATION = Coded(code="DIALOG_AVVIK", display="Avviksmelding")
TYPE_NOTE = Coded(code="DIALOG_NOTAT", display="Notat")


class DialogVersion(StrEnum):
    V1_0 = "1.0"
    V1_1 = "1.1"


NAMESPACES = {DialogVersion.V1_0: NS_V1_0, DialogVersion.V1_1: NS_V1_1}
_VERSION_BY_NS = {ns: v for v, ns in NAMESPACES.items()}


class DialogKind(StrEnum):
    """What a Dialogmelding is (`http://helsebro.no/fhir/CodeSystem/kith-dialog`)."""

    REQUEST = "request"  # forespørsel
    ANSWER = "answer"  # svar på forespørsel
    DEVIATION = "deviation"  # avviksmelding
    NOTE = "note"  # notat
    STATUS = "referral-status"  # status på henvisning

    @property
    def display(self) -> str:
        return _KIND_DISPLAY[self]


_KIND_DISPLAY = {
    DialogKind.REQUEST: "Forespørsel",
    DialogKind.ANSWER: "Svar på forespørsel",
    DialogKind.DEVIATION: "Avviksmelding",
    DialogKind.NOTE: "Notat",
    DialogKind.STATUS: "Status på henvisning",
}
_KIND_BY_TYPE = {
    TYPE_REQUEST.code: DialogKind.REQUEST,
    TYPE_ANSWER.code: DialogKind.ANSWER,
    TYPE_DEVIATION.code: DialogKind.DEVIATION,
    TYPE_NOTE.code: DialogKind.NOTE,
    TYPE_STATUS.code: DialogKind.STATUS,
}
# The MsgHead type a Dialogmelding of a kind is sent as (both versions; a received DIALOG_HELSEFAGLIG is
# read by its structure, see Dialogmelding.kind).
TYPE_BY_KIND = {
    DialogKind.REQUEST: TYPE_REQUEST,
    DialogKind.ANSWER: TYPE_ANSWER,
    DialogKind.DEVIATION: TYPE_DEVIATION,
    DialogKind.NOTE: TYPE_NOTE,
    DialogKind.STATUS: TYPE_STATUS,
}


class ReferralStatus(Enum):
    """Statuses of a referral and their TemaKodet.

    Codes 1, 2, 3, 4 and 11 are Volven 9148 as published by NHN; for "received" and "assessment
    conversation offered" no 9148 code could be confirmed, so those carry the display text only (V and S
    left out rather than invented) and the receiver reads the text.
    """

    APPOINTMENT_GIVEN = ("1", "Innkalles til helsehjelp")
    RIGHT_TO_CARE = ("2", "Rett til helsehjelp, tidspunkt kommer")
    FORWARDED = ("3", "Henvisningen er videresendt")
    NOT_ENTITLED = ("4", "Henvisningen er avvist")
    ADVICE_TO_REFERRER = ("11", "Råd til henviser")
    RECEIVED = (None, "Henvisningen er mottatt")
    ASSESSMENT_CONVERSATION = (None, "Tilbud om vurderingssamtale")

    @property
    def coded(self) -> Coded:
        code, display = self.value
        return Coded(code=code, system=OID_REFERRAL_STATUS if code else None, display=display)


@dataclass(frozen=True)
class NoteRole:
    """RollerRelatertNotat: a person's role in a note or request (a health professional; 1.1 may name none)."""

    role: Coded | None = None  # RolleNotat
    role_to_patient: Coded | None = None  # RoleToPatient (Volven 9034)
    professional: HealthProfessional | None = None  # HealthcareProfessional


@dataclass(frozen=True)
class Request:
    """Foresporsel: what is asked, and why."""

    type: Coded  # TypeForesp
    subject: str | None = None  # EmneSporsmal (1.1)
    question: str | None = None  # Sporsmal (text content; 1.1 allows XHTML)
    purpose: Coded | None = None  # Formål
    justification: str | None = None  # Begrunnelse
    urgency: Coded | None = None  # Hastegrad (CS)
    from_date: date | None = None  # FraDato
    to_date: date | None = None  # TilDato
    record_info_types: tuple[Coded, ...] = ()  # TypeJournalinfo (at most one in 1.0)
    coded_info: Coded | None = None  # KodetOpplysning (1.1)
    document_id: str | None = None  # DokIdForesp
    roles: tuple[NoteRole, ...] = ()


@dataclass(frozen=True)
class Note:
    """Notat: an answer, a note, a notification of deviation, or the status of a referral."""

    status: Coded  # TemaKodet: the theme (Volven 7322), or for a status message the status (Volven 9148)
    text: str | None = None  # TekstNotatInnhold (text content; anyType may hold XHTML)
    topic: str | None = None  # Tema
    note_date: date | None = None  # DatoNotat
    roles: tuple[NoteRole, ...] = ()  # RollerRelatertNotat
    remark: str | None = None  # Merknad
    document_id: str | None = None  # DokIdNotat
    request: Request | None = None  # Foresporsel: the request an answer answers


StatusNote = Note  # the status messages' name for it


@dataclass(frozen=True)
class Dialogmelding:
    msg_id: str
    gen_date: datetime
    sender: Organisation
    receiver: Organisation
    notes: tuple[Note, ...]
    msg_type: Coded = TYPE_STATUS
    referral: OriginalReference | None = None  # ConversationRef (for any dialogue, not only a referral's)
    patient: Patient | None = None
    copy_to: tuple[msghead.OtherReceiver, ...] = ()
    issue_date: datetime | None = None  # RefDoc/IssueDate
    requests: tuple[Request, ...] = ()  # Foresporsel (a message holds requests or notes, not both)
    version: DialogVersion = DialogVersion.V1_1
    case_type: Coded | None = None  # SakstypeKodet
    case_type_text: str | None = None  # Sakstype
    attachments: tuple[Attachment, ...] = ()  # the MsgHead documents after the Dialogmelding

    @property
    def kind(self) -> DialogKind:
        """By the MsgHead type; a DIALOG_HELSEFAGLIG (or an unknown type) by its content: requests are a
        request, a note quoting a request is an answer, else a note."""
        known = _KIND_BY_TYPE.get(self.msg_type.code or "")
        if known is not None:
            return known
        if self.requests:
            return DialogKind.REQUEST
        if any(n.request is not None for n in self.notes):
            return DialogKind.ANSWER
        return DialogKind.NOTE


def status_text(text: str, *, deadline: date | None = None, appointment: datetime | None = None) -> str:
    """Free text with the dates a status must state (pasient- og brukerrettighetsloven § 2-2)."""
    lines = [text]
    if deadline is not None:
        lines.append(f"Frist for start helsehjelp: {deadline:%d.%m.%Y}")
    if appointment is not None:
        lines.append(f"Time: {appointment:%d.%m.%Y kl. %H:%M}")
    return "\n".join(lines)


# --- building -----------------------------------------------------------------------------------------------


def _put_roles(el: etree._Element, ns: str, roles: tuple[NoteRole, ...], version: DialogVersion) -> None:
    for r in roles:
        if r.professional is None and version is DialogVersion.V1_0:
            raise KithError(AppRecError.NOT_VALID, "a Dialogmelding 1.0 role names a health professional")
        role = x.sub(el, ns, "RollerRelatertNotat")
        x.put_coded(role, ns, "RolleNotat", r.role)
        x.put_coded(role, ns, "RoleToPatient", r.role_to_patient)
        if r.professional is not None:
            x.fill_professional(x.sub(role, ns, "HealthcareProfessional"), ns, r.professional, NS_FK1)


def _put_request(parent: etree._Element, ns: str, req: Request, version: DialogVersion) -> None:
    el = x.sub(parent, ns, "Foresporsel")
    x.put_coded(el, ns, "TypeForesp", req.type)
    if version is DialogVersion.V1_1:
        x.opt_text(el, ns, "EmneSporsmal", req.subject)
    x.opt_text(el, ns, "Sporsmal", req.question)
    x.put_coded(el, ns, "Formål", req.purpose)
    x.opt_text(el, ns, "Begrunnelse", req.justification)
    x.put_coded(el, ns, "Hastegrad", req.urgency, cv=False)
    x.put_date(el, ns, "FraDato", req.from_date)
    x.put_date(el, ns, "TilDato", req.to_date)
    infos = req.record_info_types if version is DialogVersion.V1_1 else req.record_info_types[:1]
    for info in infos:
        x.put_coded(el, ns, "TypeJournalinfo", info)
    if version is DialogVersion.V1_1:
        x.put_coded(el, ns, "KodetOpplysning", req.coded_info)
    x.opt_text(el, ns, "DokIdForesp", req.document_id)
    _put_roles(el, ns, req.roles, version)


def build_document(msg: Dialogmelding) -> etree._Element:
    """The Dialogmelding business document (without MsgHead)."""
    ns = NAMESPACES[msg.version]
    doc = etree.Element(x.q(ns, "Dialogmelding"), nsmap={None: ns, "fk1": NS_FK1})
    x.put_coded(doc, ns, "SakstypeKodet", msg.case_type)
    x.opt_text(doc, ns, "Sakstype", msg.case_type_text)
    for req in msg.requests:
        _put_request(doc, ns, req, msg.version)
    for note in msg.notes:
        el = x.sub(doc, ns, "Notat")
        x.put_coded(el, ns, "TemaKodet", note.status)
        x.opt_text(el, ns, "Tema", note.topic)
        x.opt_text(el, ns, "TekstNotatInnhold", note.text)
        x.opt_text(el, ns, "Merknad", note.remark)
        x.opt_text(el, ns, "DokIdNotat", note.document_id)
        x.put_date(el, ns, "DatoNotat", note.note_date)
        if note.request is not None:
            _put_request(el, ns, note.request, msg.version)
        _put_roles(el, ns, note.roles, msg.version)
    return doc


def build_dialogmelding(msg: Dialogmelding) -> etree._Element:
    if msg.requests and msg.notes:
        raise ValueError("a Dialogmelding holds requests or notes, not both")
    business = msghead.Document(
        ref_doc=msghead.RefDoc(
            msg_type=msghead.XML_INSTANCE, issue_date=msg.issue_date, content=build_document(msg)
        )
    )
    head = msghead.MsgHead(
        msg_type=msg.msg_type,
        gen_date=msg.gen_date,
        msg_id=msg.msg_id,
        sender=msg.sender,
        receiver=msg.receiver,
        documents=(business, *(msghead.attachment_to_document(a) for a in msg.attachments)),
        conversation_ref=msg.referral,
        patient=msg.patient,
        other_receivers=msg.copy_to,
    )
    return msghead.build_msghead(head)


# --- parsing ------------------------------------------------------------------------------------------------


def is_dialogmelding(root: etree._Element) -> bool:
    """A MsgHead carrying a Dialogmelding 1.0/1.1, or of a DIALOG_ type: read as a Dialogmelding (an unknown
    version or a missing document is refused by `parse_dialogmelding`, answered to its sender)."""
    if root.tag != x.q(msghead.NS, "MsgHead"):
        return False
    type_el = root.find(f"{{{msghead.NS}}}MsgInfo/{{{msghead.NS}}}Type")
    if type_el is not None and (type_el.get("V") or "").strip().startswith("DIALOG_"):
        return True
    content = root.findall(f"{{{msghead.NS}}}Document/{{{msghead.NS}}}RefDoc/{{{msghead.NS}}}Content/*")
    return any(isinstance(c.tag, str) and x.local(c) == "Dialogmelding" for c in content)


def _roles(el: etree._Element, ns: str) -> tuple[NoteRole, ...]:
    out = []
    for role in x.children(el, ns, "RollerRelatertNotat"):
        hp = x.child(role, ns, "HealthcareProfessional")
        out.append(
            NoteRole(
                role=x.coded(role, ns, "RolleNotat"),
                role_to_patient=x.coded(role, ns, "RoleToPatient"),
                professional=None if hp is None else x.parse_professional(hp, ns, NS_FK1),
            )
        )
    return tuple(out)


def _any_text(el: etree._Element | None) -> str | None:
    """An anyType element's text content (XHTML markup is not kept)."""
    return None if el is None else "".join(el.itertext())


def _request(el: etree._Element, ns: str) -> Request:
    return Request(
        type=x.coded(x.require(el, ns, "TypeForesp")) or Coded(),
        subject=x.text(el, ns, "EmneSporsmal"),
        question=_any_text(x.child(el, ns, "Sporsmal")),
        purpose=x.coded(el, ns, "Formål"),
        justification=x.text(el, ns, "Begrunnelse"),
        urgency=x.coded(el, ns, "Hastegrad"),
        from_date=x.to_date(x.text(el, ns, "FraDato"), "FraDato"),
        to_date=x.to_date(x.text(el, ns, "TilDato"), "TilDato"),
        record_info_types=tuple(c for e in x.children(el, ns, "TypeJournalinfo") if (c := x.coded(e))),
        coded_info=x.coded(el, ns, "KodetOpplysning"),
        document_id=x.ident_text(el, ns, "DokIdForesp"),
        roles=_roles(el, ns),
    )


def _note(el: etree._Element, ns: str) -> Note:
    request = x.child(el, ns, "Foresporsel")
    return Note(
        status=x.coded(x.require(el, ns, "TemaKodet")) or Coded(),
        text=_any_text(x.child(el, ns, "TekstNotatInnhold")),
        topic=x.text(el, ns, "Tema"),
        note_date=x.to_date(x.text(el, ns, "DatoNotat"), "DatoNotat"),
        roles=_roles(el, ns),
        remark=x.text(el, ns, "Merknad"),
        document_id=x.ident_text(el, ns, "DokIdNotat"),
        request=None if request is None else _request(request, ns),
    )


def parse_dialogmelding(root: etree._Element) -> Dialogmelding:
    """A Dialogmelding 1.0 or 1.1 in its MsgHead; T10 for another business document, T02 for gaps."""
    head = msghead.parse_msghead(root)
    doc = head.business_document
    ns = None if doc is None else x.namespace(doc)
    if doc is None or x.local(doc) != "Dialogmelding" or ns not in _VERSION_BY_NS:
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, "business document is not a Dialogmelding 1.0 or 1.1")
    assert ns is not None
    requests = tuple(_request(el, ns) for el in x.children(doc, ns, "Foresporsel"))
    notes = tuple(_note(el, ns) for el in x.children(doc, ns, "Notat"))
    if not requests and not notes:
        raise KithError(AppRecError.NOT_VALID, "a Dialogmelding holds no <Foresporsel> and no <Notat>")
    first = next(d for d in head.documents if d.ref_doc.content is not None)
    attachments = tuple(
        msghead.document_to_attachment(d)
        for d in head.documents
        if d.ref_doc.content is None
        and (d.ref_doc.base64 is not None or d.ref_doc.file_reference is not None)
    )
    return Dialogmelding(
        msg_id=head.msg_id,
        gen_date=head.gen_date,
        sender=head.sender,
        receiver=head.receiver,
        notes=notes,
        msg_type=head.msg_type,
        referral=head.conversation_ref,
        patient=head.patient,
        copy_to=head.other_receivers,
        issue_date=first.ref_doc.issue_date,
        requests=requests,
        version=_VERSION_BY_NS[ns],
        case_type=x.coded(doc, ns, "SakstypeKodet"),
        case_type_text=x.text(doc, ns, "Sakstype"),
        attachments=attachments,
    )
