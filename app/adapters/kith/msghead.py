"""MsgHead v1.2 (Hodemelding, `http://www.kith.no/xmlstds/msghead/2006-05-24`): parse and build.

The envelope of Henvisning 2.0, Dialogmelding, PLO and e-resept: MsgInfo (type, ids, sender, receiver,
patient) and one or more Document/RefDoc, each either the business document as XML (`Content`), a base64
attachment (`Content/Base64Container`) or a file reference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    Attachment,
    Coded,
    Organisation,
    OriginalReference,
    Patient,
)

NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
NS_BASE64 = "http://www.kith.no/xmlstds/base64container"
MIG_VERSION = "v1.2 2006-05-24"
XML_INSTANCE = Coded(code="XML", display="XML-instans")


@dataclass(frozen=True)
class RefDoc:
    msg_type: Coded
    issue_date: datetime | None = None
    id: str | None = None
    mime_type: str | None = None
    description: str | None = None
    compression: Coded | None = None
    file_reference: str | None = None
    content: etree._Element | None = None  # the business document (first element inside Content)
    base64: str | None = None  # Content/Base64Container text


@dataclass(frozen=True)
class Document:
    ref_doc: RefDoc
    document_connection: Coded | None = None  # H hoveddokument, V vedlegg
    content_type: Coded | None = None
    content_description: str | None = None


@dataclass(frozen=True)
class OtherReceiver:
    role: Coded  # RoleReceiver, e.g. COP kopimottaker
    organisation: Organisation


@dataclass(frozen=True)
class MsgHead:
    msg_type: Coded
    gen_date: datetime
    msg_id: str
    sender: Organisation
    receiver: Organisation
    documents: tuple[Document, ...]
    conversation_ref: OriginalReference | None = None
    patient: Patient | None = None
    other_receivers: tuple[OtherReceiver, ...] = ()
    mig_version: str = MIG_VERSION

    @property
    def business_document(self) -> etree._Element | None:
        """The first XML document: by convention the business message; later ones are attachments."""
        return next((d.ref_doc.content for d in self.documents if d.ref_doc.content is not None), None)


def attachment_to_document(att: Attachment) -> Document:
    return Document(
        ref_doc=RefDoc(
            msg_type=att.msg_type,
            issue_date=att.issue_date,
            id=att.id,
            mime_type=att.mime_type,
            description=att.description,
            compression=att.compression,
            file_reference=att.file_reference,
            base64=att.content_base64,
        )
    )


def document_to_attachment(doc: Document) -> Attachment:
    r = doc.ref_doc
    return Attachment(
        msg_type=r.msg_type,
        mime_type=r.mime_type,
        description=r.description,
        issue_date=r.issue_date,
        id=r.id,
        compression=r.compression,
        content_base64=r.base64,
        file_reference=r.file_reference,
    )


# --- parsing ------------------------------------------------------------------------------------------------


def parse_organisation(el: etree._Element, ns: str = NS) -> Organisation:
    """A MsgHead Organisation, or (`ns` = felleskomponent1) an fk1:Organisation, which has no person."""
    sub_org = x.child(el, ns, "Organisation")
    hp = x.child(el, ns, "HealthcareProfessional")
    return Organisation(
        name=x.text(el, ns, "OrganisationName"),
        idents=tuple(x.parse_ident(i, ns) for i in x.children(el, ns, "Ident")),
        type=x.coded(el, ns, "TypeOrganisation"),
        address=x.parse_address(x.child(el, ns, "Address"), ns),
        telecoms=x.parse_telecoms(el, ns),
        sub_organisation=None if sub_org is None else parse_organisation(sub_org, ns),
        professional=None if hp is None else x.parse_professional(hp, ns),
    )


def parse_patient(el: etree._Element) -> Patient:
    return Patient(
        idents=tuple(x.parse_ident(i, NS) for i in x.children(el, NS, "Ident")),
        name=x.parse_name(el, NS),
        birth_date=x.to_date(x.text(el, NS, "DateOfBirth"), "DateOfBirth"),
        sex=x.coded(el, NS, "Sex"),
        nationality=x.coded(el, NS, "Nationality"),
        address=x.parse_address(x.child(el, NS, "Address"), NS),
        telecoms=x.parse_telecoms(el, NS),
    )


def _parse_refdoc(el: etree._Element) -> RefDoc:
    content = x.child(el, NS, "Content")
    business: etree._Element | None = None
    b64: str | None = None
    if content is not None:
        elements = [c for c in content if isinstance(c.tag, str)]
        container = next((c for c in elements if c.tag == x.q(NS_BASE64, "Base64Container")), None)
        if container is not None:
            b64 = "".join((container.text or "").split())
        elif elements:
            business = elements[0]
    return RefDoc(
        msg_type=x.coded(el, NS, "MsgType") or Coded(),
        issue_date=x.ts_attr(el, NS, "IssueDate"),
        id=x.ident_text(el, NS, "Id"),
        mime_type=x.ident_text(el, NS, "MimeType"),
        description=x.text(el, NS, "Description"),
        compression=x.coded(el, NS, "Compression"),
        file_reference=x.ident_text(el, NS, "FileReference"),
        content=business,
        base64=b64,
    )


def parse_msghead(root: etree._Element) -> MsgHead:
    """Read a parsed MsgHead tree (see xmlsafe.parse_xml). Raises KithError on a foreign root or gaps."""
    if root.tag != x.q(NS, "MsgHead"):
        raise KithError(
            AppRecError.UNSUPPORTED_FORMAT, "root element is not a MsgHead v1.2 (namespace or name)"
        )
    info = x.require(root, NS, "MsgInfo")
    sender = x.require(x.require(info, NS, "Sender"), NS, "Organisation")
    receiver = x.require(x.require(info, NS, "Receiver"), NS, "Organisation", AppRecError.RECEIVER_UNKNOWN)
    conv = x.child(info, NS, "ConversationRef")
    patient = x.child(info, NS, "Patient")
    others: list[OtherReceiver] = []
    for other in x.children(info, NS, "OtherReceiver"):
        org = x.child(other, NS, "Organisation")
        if org is not None:  # a patient/person as copy receiver is not modelled
            others.append(
                OtherReceiver(
                    role=x.coded(other, NS, "RoleReceiver") or Coded(), organisation=parse_organisation(org)
                )
            )
    documents = tuple(
        Document(
            ref_doc=_parse_refdoc(x.require(doc, NS, "RefDoc")),
            document_connection=x.coded(doc, NS, "DocumentConnection"),
            content_type=x.coded(doc, NS, "ContentType"),
            content_description=x.text(doc, NS, "ContentDescription"),
        )
        for doc in x.children(root, NS, "Document")
    )
    gen_date = x.to_datetime(x.text(info, NS, "GenDate"), "GenDate")
    if gen_date is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <GenDate> is missing")
    msg_id = x.required_text(info, NS, "MsgId")
    return MsgHead(
        msg_type=x.coded(x.require(info, NS, "Type")) or Coded(),
        gen_date=gen_date,
        msg_id=msg_id,
        sender=parse_organisation(sender),
        receiver=parse_organisation(receiver),
        documents=documents,
        conversation_ref=None
        if conv is None
        else OriginalReference(
            parent_id=x.required_text(conv, NS, "RefToParent"),
            conversation_id=x.required_text(conv, NS, "RefToConversation"),
        ),
        patient=None if patient is None else parse_patient(patient),
        other_receivers=tuple(others),
        mig_version=x.text(info, NS, "MIGversion") or MIG_VERSION,
    )


# --- building -----------------------------------------------------------------------------------------------


def put_organisation(parent: etree._Element, org: Organisation) -> None:
    el = x.sub(parent, NS, "Organisation")
    x.sub(el, NS, "OrganisationName", org.name or "")
    x.put_coded(el, NS, "TypeOrganisation", org.type)
    for ident in org.idents:
        x.put_ident(el, NS, ident)
    x.put_address(el, NS, org.address)
    x.put_telecoms(el, NS, org.telecoms)
    if org.sub_organisation is not None:
        put_organisation(el, org.sub_organisation)
    if org.professional is not None:
        x.fill_professional(x.sub(el, NS, "HealthcareProfessional"), NS, org.professional)


def put_patient(parent: etree._Element, patient: Patient) -> None:
    el = x.sub(parent, NS, "Patient")
    x.put_name(el, NS, patient.name)
    x.put_date(el, NS, "DateOfBirth", patient.birth_date)
    x.put_coded(el, NS, "Sex", patient.sex, cv=False)
    x.put_coded(el, NS, "Nationality", patient.nationality, cv=False)
    for ident in patient.idents:
        x.put_ident(el, NS, ident)
    x.put_address(el, NS, patient.address)
    x.put_telecoms(el, NS, patient.telecoms)


def _put_document(root: etree._Element, doc: Document) -> None:
    el = x.sub(root, NS, "Document")
    x.put_coded(el, NS, "DocumentConnection", doc.document_connection, cv=False)
    x.put_coded(el, NS, "ContentType", doc.content_type)
    x.opt_text(el, NS, "ContentDescription", doc.content_description)
    put_ref_doc(el, NS, doc.ref_doc)


def put_ref_doc(parent: etree._Element, ns: str, r: RefDoc) -> None:
    """A RefDoc in namespace `ns`: MsgHead's, or a Henvisning 1.x message's own (the same structure)."""
    ref = x.sub(parent, ns, "RefDoc")
    x.put_ts_attr(ref, ns, "IssueDate", r.issue_date)
    x.put_coded(ref, ns, "MsgType", r.msg_type, cv=False)
    x.opt_text(ref, ns, "Id", r.id)
    x.opt_text(ref, ns, "MimeType", r.mime_type)
    x.opt_text(ref, ns, "Description", r.description)
    x.put_coded(ref, ns, "Compression", r.compression, cv=False)
    if r.file_reference is not None:
        x.sub(ref, ns, "FileReference", r.file_reference)
    elif r.content is not None:
        x.sub(ref, ns, "Content").append(copy.deepcopy(r.content))
    elif r.base64 is not None:
        content = x.sub(ref, ns, "Content")
        etree.SubElement(content, x.q(NS_BASE64, "Base64Container"), nsmap={None: NS_BASE64}).text = r.base64


def build_msghead(head: MsgHead) -> etree._Element:
    root = etree.Element(x.q(NS, "MsgHead"), nsmap={None: NS})
    info = x.sub(root, NS, "MsgInfo")
    x.put_coded(info, NS, "Type", head.msg_type, cv=False)
    x.sub(info, NS, "MIGversion", MIG_VERSION)
    x.sub(info, NS, "GenDate", x.iso(head.gen_date))
    x.sub(info, NS, "MsgId", head.msg_id)
    if head.conversation_ref is not None:
        conv = x.sub(info, NS, "ConversationRef")
        x.sub(conv, NS, "RefToParent", head.conversation_ref.parent_id)
        x.sub(conv, NS, "RefToConversation", head.conversation_ref.conversation_id)
    put_organisation(x.sub(info, NS, "Sender"), head.sender)
    put_organisation(x.sub(info, NS, "Receiver"), head.receiver)
    for other in head.other_receivers:
        el = x.sub(info, NS, "OtherReceiver")
        x.put_coded(el, NS, "RoleReceiver", other.role, cv=False)
        put_organisation(el, other.organisation)
    if head.patient is not None:
        put_patient(info, head.patient)
    if not head.documents:
        raise ValueError("a MsgHead needs at least one Document")
    for doc in head.documents:
        _put_document(root, doc)
    return root
