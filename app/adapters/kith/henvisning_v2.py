"""Henvisning 2.0 (`http://ehelse.no/xmlstds/henvisning/2017-11-30`) inside MsgHead: parse and serialize.

MsgHead types HENVISNING_NYTILSTAND (new condition) and HENVISNING_VIDERE (forwarding, with the
rettighetsvurdering in VurderingAvHenvisning). Patient, sender and receiver live in the MsgHead; the
business document carries the clinical content; further Documents are attachments (base64 or reference).
"""

from __future__ import annotations

from lxml import etree

from app.adapters.kith import _henv_common as c
from app.adapters.kith import _henv_v2_parts as parts
from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    AssessmentDate,
    CancerPathway,
    Coded,
    Forwarding,
    HenvisningVersion,
    InterpreterNeed,
    Patient,
    ProfessionalRole,
    Referral,
    RelatedProfessional,
    RequestedService,
    RightsAssessment,
)

NS = "http://ehelse.no/xmlstds/henvisning/2017-11-30"
NS_PO = "http://ehelse.no/xmlstds/po/poKomponent/2017-11-30"
NS_FK1 = c.NS_FK1
TYPE_NEW_CONDITION = Coded(code="HENVISNING_NYTILSTAND", display="Henvisning ny tilstand")
TYPE_FORWARDING = Coded(code="HENVISNING_VIDERE", display="Viderehenvisning")
MESSAGE_TYPES = frozenset({"HENVISNING_NYTILSTAND", "HENVISNING_VIDERE"})


# --- parsing ------------------------------------------------------------------------------------------------


def _patient(head: msghead.MsgHead, doc: etree._Element) -> Patient:
    if head.patient is None:
        raise KithError(AppRecError.PATIENT_INFO_INSUFFICIENT, "MsgHead has no Patient")
    extra = x.child(doc, NS_PO, "TilleggsopplysningPasient")
    p = head.patient
    patient = Patient(
        idents=p.idents,
        name=p.name,
        birth_date=p.birth_date,
        sex=p.sex,
        nationality=p.nationality,
        address=p.address,
        telecoms=p.telecoms,
        marital_status=x.coded(extra, NS_PO, "SivilStatus"),
        lives_alone=x.to_bool(x.text(extra, NS_PO, "BorAlene"), "BorAlene"),
        language=x.coded(extra, NS_PO, "Sprak"),
        receives_municipal_services=x.to_bool(
            x.text(extra, NS_PO, "MottarKommunaleTjenester"), "MottarKommunaleTjenester"
        ),
        additional_info_note=x.text(extra, NS_PO, "Merknad"),
    )
    return c.check_patient(patient)


def _professionals(doc: etree._Element) -> tuple[RelatedProfessional, ...]:
    out = []
    for el in x.children(doc, NS_PO, "KontaktpersonHelsepersonell"):
        out.append(
            RelatedProfessional(
                role=ProfessionalRole.CONTACT,
                professional=x.parse_professional(x.require(el, NS_PO, "Kontaktperson"), NS_FK1),
                note=x.text(el, NS_PO, "Merknad"),
            )
        )
    for el in x.children(doc, NS_PO, "AnsvarForRapport"):
        out.append(
            RelatedProfessional(
                role=ProfessionalRole.REPORT_RESPONSIBLE,
                professional=x.parse_professional(x.require(el, NS_PO, "AnsvarligRapport"), NS_FK1),
                relation=x.coded(el, NS_PO, "TypeRelasjon"),
                approved_date=x.to_date(x.text(el, NS_PO, "GodkjentDato"), "GodkjentDato"),
                note=x.text(el, NS_PO, "Merknad"),
            )
        )
    return tuple(out)


def _interpreter_needs(doc: etree._Element) -> tuple[InterpreterNeed, ...]:
    out = []
    for info in x.children(doc, NS_PO, "InfoAssistertKommunikasjon"):
        el = x.require(info, NS_PO, "AssistertKommunikasjon")
        person = x.child(el, NS_PO, "PersonTolkebehov")
        preferred = x.child(el, NS_PO, "PreferertTolk")
        out.append(
            InterpreterNeed(
                language=x.coded(el, NS_PO, "BehovTolkSprak"),
                person=None if person is None else x.parse_name(person, NS_FK1),
                hearing_impaired=x.to_bool(x.text(el, NS_PO, "Horselsvikt"), "Horselsvikt"),
                visually_impaired=x.to_bool(x.text(el, NS_PO, "Synsvikt"), "Synsvikt"),
                note=x.text(el, NS_PO, "Merknad"),
                preferred_interpreter=None if preferred is None else x.parse_name(preferred, NS_FK1),
                ended=x.to_date(x.text(el, NS_PO, "BehovOpphortDato"), "BehovOpphortDato"),
            )
        )
    return tuple(out)


def _forwarding(doc: etree._Element) -> Forwarding | None:
    vurdering = x.child(doc, NS, "VurderingAvHenvisning")
    pathways = tuple(
        CancerPathway(code=x.coded(p, NS, "Pakkeforlopskode") or Coded(), note=x.text(p, NS, "Merknad"))
        for p in x.children(doc, NS, "Pakkeforlop")
    )
    if vurdering is None and not pathways:
        return None
    dates = []
    for d in x.children(vurdering, NS, "DatoMottakOgVurdering"):
        day = x.to_date(x.text(d, NS, "Dato"), "Dato")
        if day is None:
            raise KithError(AppRecError.NOT_VALID, "mandatory element <Dato> is missing")
        dates.append(AssessmentDate(type=x.coded(d, NS, "TypeDato") or Coded(), date=day))
    info = x.child(vurdering, NS, "Opplysninger")
    assessment = None
    if info is not None:
        right = x.to_bool(x.text(info, NS, "RettTilHelsehjelp"), "RettTilHelsehjelp")
        if right is None:
            raise KithError(AppRecError.NOT_VALID, "mandatory element <RettTilHelsehjelp> is missing")
        assessment = RightsAssessment(
            right_to_care=right,
            outcome=x.coded(x.require(info, NS, "UtfallAvVurdering")) or Coded(),
            pathway_id=x.required_text(info, NS, "ForlopsId"),
            free_hospital_choice=x.to_bool(x.text(info, NS, "FrittSykehusvalg"), "FrittSykehusvalg"),
            waiting_end_code=x.coded(info, NS, "VentetidSluttkode"),
        )
    return Forwarding(dates=tuple(dates), assessment=assessment, pathways=pathways)


def parse_v2(head: msghead.MsgHead) -> Referral:
    """Map a parsed MsgHead carrying a Henvisning 2.0 to the referral model."""
    if head.msg_type.code not in MESSAGE_TYPES:
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, "MsgHead type is not a Henvisning 2.0 type")
    doc = head.business_document
    if doc is None:
        raise KithError(AppRecError.NOT_VALID, "MsgHead carries no business document")
    if doc.tag != x.q(NS, "Henvisning"):
        raise KithError(
            AppRecError.UNSUPPORTED_FORMAT, "business document is not a Henvisning 2.0 (namespace or name)"
        )
    req = x.require(doc, NS, "ReqServ")
    content = x.require(doc, NS_PO, "TypeInnholdIMelding")
    issued = x.to_datetime(x.text(doc, NS, "IssueDate"), "IssueDate")
    if issued is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <IssueDate> is missing")
    attachments = tuple(
        msghead.document_to_attachment(d) for d in head.documents if d.ref_doc.content is None
    )
    return Referral(
        version=HenvisningVersion.V2_0,
        kind=c.parse_kind(doc, NS),
        msg_id=head.msg_id,
        message_type=head.msg_type,
        generated=head.gen_date,
        document_id=x.required_text(doc, NS, "DocumentId"),
        issued=issued,
        patient=_patient(head, doc),
        sender=head.sender,
        receiver=head.receiver,
        requested_service=RequestedService(
            service_type=x.coded(req, NS, "ServType"),
            priority=x.coded(req, NS, "Priority"),
            requested_date=x.to_date(x.text(req, NS, "ReqDate"), "ReqDate"),
            comment=x.text(req, NS, "Comment"),
        ),
        content_type=x.coded(content, NS_PO, "TypeInnhold"),
        content_type_note=x.text(content, NS_PO, "Merknad"),
        request_comment=x.text(doc, NS, "ReqComment"),
        payment_category=x.coded(doc, NS, "PaymentCat"),
        basis_for_health_services=x.coded(doc, NS, "BasisForHealthServices"),
        reasons=c.parse_sections(doc, NS, "ReasonAsText"),
        diagnoses=c.parse_diagnoses(doc, NS),
        clinical_items=c.parse_items(doc, NS, v2=True),
        comments=c.parse_sections(doc, NS, "Comment"),
        precautions=c.parse_precautions(doc, NS, v2=True),
        related_persons=c.parse_related_persons(doc, NS_PO),
        professionals=_professionals(doc),
        interpreter_needs=_interpreter_needs(doc),
        associated_units=parts.parse_units(doc, NS_PO),
        sent_documents=parts.parse_sent_documents(doc, NS_PO),
        contact_persons=parts.parse_contact_persons(doc, NS_PO),
        medication_review=parts.parse_medication_review(doc, NS_PO),
        consents=parts.parse_consents(doc, NS),
        attachments=attachments,
        original=head.conversation_ref,
        forwarding=_forwarding(doc),
    )


# --- serializing --------------------------------------------------------------------------------------------


def _put_extra(doc: etree._Element, p: Patient) -> None:
    values = (
        p.marital_status,
        p.lives_alone,
        p.language,
        p.receives_municipal_services,
        p.additional_info_note,
    )
    if all(v is None for v in values):
        return
    el = x.sub(doc, NS_PO, "TilleggsopplysningPasient")
    x.put_coded(el, NS_PO, "SivilStatus", p.marital_status, cv=False)
    x.put_bool(el, NS_PO, "BorAlene", p.lives_alone)
    x.put_coded(el, NS_PO, "Sprak", p.language, cv=False)
    x.put_bool(el, NS_PO, "MottarKommunaleTjenester", p.receives_municipal_services)
    x.opt_text(el, NS_PO, "Merknad", p.additional_info_note)


def _put_professionals(doc: etree._Element, ref: Referral) -> None:
    # Contacts come before report responsibles in the schema; 1.x PatRelHCP entries are written as
    # AnsvarForRapport (HHE henviser) or contacts (everyone else), which keeps their relation code visible.
    contacts = [p for p in ref.professionals if p.role is ProfessionalRole.CONTACT]
    responsible = [p for p in ref.professionals if p.role is ProfessionalRole.REPORT_RESPONSIBLE]
    for p in ref.professionals:
        if p.role is ProfessionalRole.PATIENT_RELATION:
            (responsible if p.relation is not None and p.relation.code == "HHE" else contacts).append(p)
    for p in contacts:
        el = x.sub(doc, NS_PO, "KontaktpersonHelsepersonell")
        x.fill_professional(x.sub(el, NS_PO, "Kontaktperson"), NS_FK1, p.professional)
        x.opt_text(el, NS_PO, "Merknad", p.note)
    for p in responsible:
        el = x.sub(doc, NS_PO, "AnsvarForRapport")
        x.fill_professional(x.sub(el, NS_PO, "AnsvarligRapport"), NS_FK1, p.professional)
        x.put_date(el, NS_PO, "GodkjentDato", p.approved_date)
        x.put_coded(el, NS_PO, "TypeRelasjon", p.relation)
        x.opt_text(el, NS_PO, "Merknad", p.note)


def _put_interpreters(doc: etree._Element, needs: tuple[InterpreterNeed, ...]) -> None:
    for need in needs:
        el = x.sub(x.sub(doc, NS_PO, "InfoAssistertKommunikasjon"), NS_PO, "AssistertKommunikasjon")
        if need.person is not None:
            c.put_fk1_person(x.sub(el, NS_PO, "PersonTolkebehov"), need.person)
        x.put_bool(el, NS_PO, "Horselsvikt", need.hearing_impaired)
        x.put_bool(el, NS_PO, "Synsvikt", need.visually_impaired)
        x.put_coded(el, NS_PO, "BehovTolkSprak", need.language, cv=False)
        if need.preferred_interpreter is not None:
            c.put_fk1_person(x.sub(el, NS_PO, "PreferertTolk"), need.preferred_interpreter)
        x.put_date(el, NS_PO, "BehovOpphortDato", need.ended)
        x.opt_text(el, NS_PO, "Merknad", need.note)


def _put_forwarding(doc: etree._Element, fwd: Forwarding | None) -> None:
    if fwd is None:
        return
    if fwd.dates or fwd.assessment is not None:
        vurdering = x.sub(doc, NS, "VurderingAvHenvisning")
        for d in fwd.dates:
            el = x.sub(vurdering, NS, "DatoMottakOgVurdering")
            x.put_coded(el, NS, "TypeDato", d.type)
            x.put_date(el, NS, "Dato", d.date)
        a = fwd.assessment
        if a is not None:
            info = x.sub(vurdering, NS, "Opplysninger")
            x.put_bool(info, NS, "FrittSykehusvalg", a.free_hospital_choice)
            x.put_coded(info, NS, "VentetidSluttkode", a.waiting_end_code)
            x.sub(info, NS, "ForlopsId", a.pathway_id)
            x.put_bool(info, NS, "RettTilHelsehjelp", a.right_to_care)
            x.put_coded(info, NS, "UtfallAvVurdering", a.outcome)
    for pathway in fwd.pathways:
        el = x.sub(doc, NS, "Pakkeforlop")
        x.put_coded(el, NS, "Pakkeforlopskode", pathway.code)
        x.opt_text(el, NS, "Merknad", pathway.note)


def build_henvisning_v2(ref: Referral) -> etree._Element:
    """The Henvisning 2.0 business document (without MsgHead)."""
    doc = etree.Element(x.q(NS, "Henvisning"), nsmap={None: NS, "po": NS_PO, "fk1": NS_FK1})
    x.put_coded(doc, NS, "ServType", c.kind_coded(ref.kind), cv=False)
    x.sub(doc, NS, "IssueDate", x.iso(ref.issued))
    x.put_coded(doc, NS, "PaymentCat", ref.payment_category, cv=False)
    x.opt_text(doc, NS, "ReqComment", ref.request_comment)
    x.sub(doc, NS, "DocumentId", ref.document_id)
    x.put_coded(doc, NS, "BasisForHealthServices", ref.basis_for_health_services, cv=False)
    _put_extra(doc, ref.patient)
    c.put_related_persons(doc, NS_PO, ref.related_persons, v2=True)
    parts.put_units(doc, NS_PO, ref.associated_units)
    _put_professionals(doc, ref)
    parts.put_sent_documents(doc, NS_PO, ref.sent_documents)
    content = x.sub(doc, NS_PO, "TypeInnholdIMelding")
    x.put_coded(content, NS_PO, "TypeInnhold", ref.content_type or Coded())
    x.opt_text(content, NS_PO, "Merknad", ref.content_type_note)
    _put_interpreters(doc, ref.interpreter_needs)
    parts.put_contact_persons(doc, NS_PO, ref.contact_persons)
    parts.put_medication_review(doc, NS_PO, ref.medication_review)
    c.put_precautions(doc, NS, ref.precautions, v2=True)
    c.put_items(doc, NS, ref.clinical_items, v2=True)
    c.put_sections(doc, NS, "ReasonAsText", ref.reasons, v2=True)
    c.put_diagnoses(doc, NS, ref.diagnoses)
    rs = ref.requested_service or RequestedService()
    req = x.sub(doc, NS, "ReqServ")
    x.put_coded(req, NS, "ServType", rs.service_type or c.kind_coded(ref.kind), cv=False)
    x.put_date(req, NS, "ReqDate", rs.requested_date)
    x.put_coded(req, NS, "Priority", rs.priority or Coded(), cv=False)
    x.opt_text(req, NS, "Comment", rs.comment)
    c.put_sections(doc, NS, "Comment", ref.comments, v2=True)
    _put_forwarding(doc, ref.forwarding)
    parts.put_consents(doc, NS, ref.consents)
    return doc


def serialize_v2(ref: Referral) -> etree._Element:
    """The complete MsgHead with the Henvisning 2.0 and the attachments as further Documents."""
    if ref.message_type.code in MESSAGE_TYPES:
        msg_type = ref.message_type
    else:  # a 1.x referral re-issued as 2.0
        msg_type = TYPE_FORWARDING if ref.forwarding is not None else TYPE_NEW_CONDITION
    business = msghead.Document(
        ref_doc=msghead.RefDoc(msg_type=msghead.XML_INSTANCE, content=build_henvisning_v2(ref))
    )
    head = msghead.MsgHead(
        msg_type=msg_type,
        gen_date=ref.generated,
        msg_id=ref.msg_id,
        sender=ref.sender,
        receiver=ref.receiver,
        documents=(business, *(msghead.attachment_to_document(a) for a in ref.attachments)),
        conversation_ref=ref.original,
        patient=Patient(
            idents=ref.patient.idents,
            name=ref.patient.name,
            birth_date=ref.patient.birth_date,
            sex=ref.patient.sex,
            nationality=ref.patient.nationality,
            address=ref.patient.address,
            telecoms=ref.patient.telecoms,
        ),
    )
    return msghead.build_msghead(head)


# --- what the model does not hold --------------------------------------------------------------------------

_MAPPED_V2: dict[str, frozenset[str]] = {
    "Henvisning": frozenset(
        {
            "ServType",
            "IssueDate",
            "ReqComment",
            "DocumentId",
            "PaymentCat",
            "BasisForHealthServices",
            "TilleggsopplysningPasient",
            "ParorendeForesatt",
        }
        | {
            "TilknyttetEnhet",
            "SendtDokument",
            "PasientrelatertKontaktperson",
            "Legemiddelgjennomgang",
            "Consent",
        }
        | {"KontaktpersonHelsepersonell", "AnsvarForRapport", "TypeInnholdIMelding"}
        | {"InfoAssistertKommunikasjon", "PatientPrecaution", "InfItem", "ReasonAsText", "Diagnosis"}
        | {"ReqServ", "Comment", "VurderingAvHenvisning", "Pakkeforlop"}
    ),
    "PatientPrecaution": frozenset({"Precaution", "StartDateTime", "EndDateTime"}),
    "InfItem": frozenset({"ResultItem", "Medication", "Observation", "Type", "StartDateTime", "EndDateTime"}),
    "Medication": frozenset({"DrugId", "Comment", "Status", "UnitDose", "DosageText"}),
    "Diagnosis": frozenset({"Concept"}),
    "ParorendeForesatt": frozenset({"Slektskap", "Omsorgsfunksjon", "NarmesteParorende", "Referanseperson"})
    | {"Merknad", "FodselsarMindrearigParorende"},
    "InfoAssistertKommunikasjon": frozenset({"AssistertKommunikasjon"}),
    "AssistertKommunikasjon": frozenset({"PersonTolkebehov", "Horselsvikt", "Synsvikt", "BehovTolkSprak"})
    | {"Merknad", "PreferertTolk", "BehovOpphortDato"},
    "TilleggsopplysningPasient": frozenset(
        {"SivilStatus", "BorAlene", "Sprak", "MottarKommunaleTjenester", "Merknad"}
    ),
    "AnsvarForRapport": frozenset({"AnsvarligRapport", "GodkjentDato", "TypeRelasjon", "Merknad"}),
    "KontaktpersonHelsepersonell": frozenset({"Kontaktperson", "Merknad"}),
    "TypeInnholdIMelding": frozenset({"TypeInnhold", "Merknad"}),
    **parts.MAPPED,
}


def unmapped_v2(head: msghead.MsgHead) -> tuple[str, ...]:
    """Paths (names only, never values) of the elements of a Henvisning 2.0 business document that the
    model does not hold, e.g. `Henvisning/OpplysningerOmIndividuellPlan`, `Henvisning/Diagnosis/Modifier`."""
    doc = head.business_document
    return () if doc is None else tuple(c.unmapped(doc, _MAPPED_V2, "Henvisning"))
