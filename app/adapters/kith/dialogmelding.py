"""Dialogmelding 1.1 (`http://www.kith.no/xmlstds/dialog/2013-01-23`) in MsgHead: status på henvisning.

Built as in the official sample "Status_paa_henvisning-InnkaltEtterViderehenvisning": MsgHead type
DIALOG_STATUS_HENVISNING, ConversationRef pointing at the referral (RefToParent) and the conversation's
first referral (RefToConversation), and one `Notat` whose `TemaKodet` (Volven 9148) is the status and whose
`TekstNotatInnhold` explains it (right to care, deadline, appointment ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    OID_REFERRAL_STATUS,
    Coded,
    HealthProfessional,
    Organisation,
    OriginalReference,
    Patient,
)

NS = "http://www.kith.no/xmlstds/dialog/2013-01-23"
NS_FK1 = "http://www.kith.no/xmlstds/felleskomponent1"
TYPE_STATUS = Coded(code="DIALOG_STATUS_HENVISNING", display="Status på henvisning")


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
class StatusNote:
    status: Coded  # TemaKodet
    text: str | None = None  # TekstNotatInnhold
    topic: str | None = None  # Tema
    note_date: date | None = None  # DatoNotat
    contact_role: Coded | None = None  # RollerRelatertNotat/RoleToPatient (Volven 9034)
    contact: HealthProfessional | None = None  # RollerRelatertNotat/HealthcareProfessional


@dataclass(frozen=True)
class Dialogmelding:
    msg_id: str
    gen_date: datetime
    sender: Organisation
    receiver: Organisation
    notes: tuple[StatusNote, ...]
    msg_type: Coded = TYPE_STATUS
    referral: OriginalReference | None = None  # ConversationRef
    patient: Patient | None = None
    copy_to: tuple[msghead.OtherReceiver, ...] = ()
    issue_date: datetime | None = None  # RefDoc/IssueDate


def status_text(text: str, *, deadline: date | None = None, appointment: datetime | None = None) -> str:
    """Free text with the dates a status must state (pasient- og brukerrettighetsloven § 2-2)."""
    lines = [text]
    if deadline is not None:
        lines.append(f"Frist for start helsehjelp: {deadline:%d.%m.%Y}")
    if appointment is not None:
        lines.append(f"Time: {appointment:%d.%m.%Y kl. %H:%M}")
    return "\n".join(lines)


def build_dialogmelding(msg: Dialogmelding) -> etree._Element:
    doc = etree.Element(x.q(NS, "Dialogmelding"), nsmap={None: NS, "fk1": NS_FK1})
    for note in msg.notes:
        el = x.sub(doc, NS, "Notat")
        x.put_coded(el, NS, "TemaKodet", note.status)
        x.opt_text(el, NS, "Tema", note.topic)
        x.opt_text(el, NS, "TekstNotatInnhold", note.text)
        x.put_date(el, NS, "DatoNotat", note.note_date)
        if note.contact is not None or note.contact_role is not None:
            role = x.sub(el, NS, "RollerRelatertNotat")
            x.put_coded(role, NS, "RoleToPatient", note.contact_role)
            if note.contact is not None:
                x.fill_professional(x.sub(role, NS, "HealthcareProfessional"), NS, note.contact, NS_FK1)
    head = msghead.MsgHead(
        msg_type=msg.msg_type,
        gen_date=msg.gen_date,
        msg_id=msg.msg_id,
        sender=msg.sender,
        receiver=msg.receiver,
        documents=(
            msghead.Document(
                ref_doc=msghead.RefDoc(msg_type=msghead.XML_INSTANCE, issue_date=msg.issue_date, content=doc)
            ),
        ),
        conversation_ref=msg.referral,
        patient=msg.patient,
        other_receivers=msg.copy_to,
    )
    return msghead.build_msghead(head)


def parse_dialogmelding(root: etree._Element) -> Dialogmelding:
    head = msghead.parse_msghead(root)
    doc = head.business_document
    if doc is None or doc.tag != x.q(NS, "Dialogmelding"):
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, "business document is not a Dialogmelding 1.1")
    notes = []
    for el in x.children(doc, NS, "Notat"):
        role = x.child(el, NS, "RollerRelatertNotat")
        hp = x.child(role, NS, "HealthcareProfessional")
        text_el = x.child(el, NS, "TekstNotatInnhold")
        notes.append(
            StatusNote(
                status=x.coded(x.require(el, NS, "TemaKodet")) or Coded(),
                # anyType: may hold XHTML; the text content is what a status carries
                text=None if text_el is None else "".join(text_el.itertext()),
                topic=x.text(el, NS, "Tema"),
                note_date=x.to_date(x.text(el, NS, "DatoNotat"), "DatoNotat"),
                contact_role=x.coded(role, NS, "RoleToPatient"),
                contact=None if hp is None else x.parse_professional(hp, NS, NS_FK1),
            )
        )
    first = next((d for d in head.documents if d.ref_doc.content is not None), None)
    return Dialogmelding(
        msg_id=head.msg_id,
        gen_date=head.gen_date,
        sender=head.sender,
        receiver=head.receiver,
        notes=tuple(notes),
        msg_type=head.msg_type,
        referral=head.conversation_ref,
        patient=head.patient,
        copy_to=head.other_receivers,
        issue_date=None if first is None else first.ref_doc.issue_date,
    )
