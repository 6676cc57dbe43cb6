"""The PLO model -> a Pasientlogistikk message (a report: `build_report`) in its MsgHead (pure).

1.6 is the version of the official samples and the one in use; whatever version a message was read in, it
is written as 1.6, except the municipality's answer `TilbakemeldingUtskrivningsklarPasient`, which only 2.0
has. Elements are written in the XSD's order (`Pasientlogistikk-v1.6.xsd` / `-v2.0.xsd` and their
poKomponent); the MsgHead by `kith.msghead`, as for a Dialogmelding. The caller validates the result
against the XSD.
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith.model import Coded, HealthProfessional, Organisation
from app.adapters.plo import fields
from app.adapters.plo.build_report import build_report_document
from app.adapters.plo.model import Event, Family, Logistics, PloMessage, UnbuildableError

__all__ = ["UnbuildableError", "build_logistics_document", "build_plo"]

NS_LOGISTICS = "http://www.kith.no/xmlstds/po/Pasientlogistikk/2012-04-01"
NS_PO = fields.NS_PO
NS_FK1 = fields.NS_FK1
NS_LOGISTICS_2_0 = "http://ehelse.no/xmlstds/po/Pasientlogistikk/2016-05-30"
NS_PO_2_0 = "http://ehelse.no/xmlstds/po/poKomponent/2017-11-30"
OID_DISCHARGE_STATE = "2.16.578.1.12.4.1.1.8431"  # Uttilstand


def _event(parent: etree._Element, e: Event, po: str = NS_PO) -> None:
    el = x.sub(parent, po, "TidsfestetHendelse")
    x.put_coded(el, po, "Hendelsekode", e.code)
    x.opt_text(el, po, "BeskrivelseAvHendelse", e.description)
    if po == NS_PO:
        x.put_ts_attr(el, po, "TidspunktForHendelse", e.time)  # 1.6: kith:TS (V)
    else:  # 2.0: an xs:dateTime element; a day is its start
        when = e.time if isinstance(e.time, datetime) else datetime.combine(e.time, datetime.min.time())
        x.put_date(el, po, "TidspunktForHendelse", when)
    x.put_bool(el, po, "Anslag", bool(e.estimated))  # required: not said is not an estimate
    x.opt_text(el, po, "Merknad", e.remark)


def _unit(parent: etree._Element, unit: Organisation) -> None:
    """TilknyttetEnhet/Kontaktenhet (fk1:Organisation: a name and at least one Ident)."""
    el = x.sub(x.sub(parent, NS_PO, "TilknyttetEnhet"), NS_PO, "Kontaktenhet")
    x.put_coded(el, NS_FK1, "TypeOrganisation", unit.type)
    x.sub(el, NS_FK1, "OrganisationName", unit.name or "")
    for ident in unit.idents:
        x.put_ident(el, NS_FK1, ident)
    x.put_address(el, NS_FK1, unit.address)
    x.put_telecoms(el, NS_FK1, unit.telecoms)


def _responsible(parent: etree._Element, hp: HealthProfessional) -> None:
    el = x.sub(x.sub(parent, NS_PO, "AnsvarForRapport"), NS_PO, "AnsvarligRapport")
    x.fill_professional(el, NS_FK1, hp)


def _discharged_to(parent: etree._Element, codes: tuple[Coded, ...]) -> None:
    state = next((c for c in codes if c.system == OID_DISCHARGE_STATE), None)
    to = next((c for c in codes if c is not state), None)
    if to is None:
        raise UnbuildableError("a MeldingOmUtskrevetPasient needs UtskrevetTil/UtTil (where to)")
    el = x.sub(parent, NS_PO, "UtskrevetTil")
    x.put_coded(el, NS_PO, "Uttilstand", state)
    x.put_coded(el, NS_PO, "UtTil", to)


def _status(msg: PloMessage) -> Coded:
    return fields.kind_coded(msg.kind)


def _answer_document(msg: PloMessage) -> etree._Element:
    """2.0: the municipality's answer to a discharge-ready notice (the common part holds only the kind)."""
    doc = etree.Element(
        x.q(NS_LOGISTICS_2_0, "Pasientlogistikk"), nsmap={"p1": NS_LOGISTICS_2_0, None: NS_PO_2_0}
    )
    common = x.sub(doc, NS_PO_2_0, "FellesAdministrativeOpplysninger")
    x.put_coded(
        x.sub(common, NS_PO_2_0, "InformasjonOmForsendelsen"), NS_PO_2_0, "Forsendelsesstatus", _status(msg)
    )
    part = x.sub(doc, NS_LOGISTICS_2_0, Logistics.ANSWER.value)
    for e in msg.events:
        _event(part, e, NS_PO_2_0)
    return doc


def build_logistics_document(msg: PloMessage) -> etree._Element:
    """The Pasientlogistikk business document (without MsgHead): 1.6, the answer 2.0."""
    if msg.family is not Family.LOGISTICS or msg.logistics is None:
        raise UnbuildableError("not a Pasientlogistikk message")
    if not msg.events:
        raise UnbuildableError("a Pasientlogistikk message needs a TidsfestetHendelse")
    if msg.logistics is Logistics.ANSWER:
        return _answer_document(msg)
    doc = etree.Element(
        x.q(NS_LOGISTICS, "Pasientlogistikk"), nsmap={"p1": NS_LOGISTICS, None: NS_PO, "fk1": NS_FK1}
    )
    info = x.sub(doc, NS_PO, "InformasjonOmForsendelsen")
    x.put_coded(info, NS_PO, "Forsendelsesstatus", _status(msg))
    for unit in msg.contact_units:
        if unit.idents:
            _unit(doc, unit)
    if msg.responsible is not None:
        _responsible(doc, msg.responsible)
    part = x.sub(doc, NS_LOGISTICS, msg.logistics.value)
    one_event = msg.logistics in (Logistics.ADMITTED, Logistics.DEATH, Logistics.DISCHARGED)
    if one_event and len(msg.events) != 1:
        raise UnbuildableError(f"a {msg.logistics.value} holds exactly one TidsfestetHendelse")
    if msg.logistics is Logistics.DISCHARGED:
        _discharged_to(part, msg.discharged_to)
    for e in msg.events:
        _event(part, e)
    return doc


def build_plo(msg: PloMessage) -> etree._Element:
    """The whole message: MsgHead with the business document (Pasientlogistikk or a report)."""
    content = build_logistics_document(msg) if msg.family is Family.LOGISTICS else build_report_document(msg)
    business = msghead.Document(
        ref_doc=msghead.RefDoc(msg_type=msghead.XML_INSTANCE, issue_date=msg.issue_date, content=content)
    )
    head = msghead.MsgHead(
        msg_type=msg.msg_type,
        gen_date=msg.gen_date,
        msg_id=msg.msg_id,
        sender=msg.sender,
        receiver=msg.receiver,
        documents=(business,),
        conversation_ref=msg.conversation,
        patient=msg.patient,
    )
    return msghead.build_msghead(head)
