"""The PLO model -> a Pasientlogistikk 1.6 message in its MsgHead (pure).

1.6 is the version of the official samples and the one in use; whatever version a message was read in, it
is written as 1.6 (the 2.0 answer `TilbakemeldingUtskrivningsklarPasient` has no 1.6 form and is refused).
Elements are written in the XSD's order (`Pasientlogistikk-v1.6.xsd`, `poKomponent-v1.6.xsd`); the MsgHead
by `kith.msghead`, as for a Dialogmelding. The caller validates the result against the XSD.
"""

from __future__ import annotations

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith.model import Coded, HealthProfessional, Organisation
from app.adapters.plo.model import Event, Family, Kind, Logistics, PloMessage

NS_LOGISTICS = "http://www.kith.no/xmlstds/po/Pasientlogistikk/2012-04-01"
NS_PO = "http://www.kith.no/xmlstds/po/poKomponent/2012-04-01"
NS_FK1 = "http://www.kith.no/xmlstds/felleskomponent1"
OID_DISCHARGE_STATE = "2.16.578.1.12.4.1.1.8431"  # Uttilstand
_KIND_DISPLAY = {Kind.NEW: "Ny", Kind.CHANGE: "Endring", Kind.CANCEL: "Kansellering"}


class UnbuildableError(ValueError):
    """The model cannot be written as PLO 1.6 (the reason names the part, never patient data)."""


def _event(parent: etree._Element, e: Event) -> None:
    el = x.sub(parent, NS_PO, "TidsfestetHendelse")
    x.put_coded(el, NS_PO, "Hendelsekode", e.code)
    x.opt_text(el, NS_PO, "BeskrivelseAvHendelse", e.description)
    x.put_ts_attr(el, NS_PO, "TidspunktForHendelse", e.time)
    x.put_bool(el, NS_PO, "Anslag", bool(e.estimated))  # required: not said is not an estimate
    x.opt_text(el, NS_PO, "Merknad", e.remark)


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


def build_logistics_document(msg: PloMessage) -> etree._Element:
    """The Pasientlogistikk 1.6 business document (without MsgHead)."""
    if msg.family is not Family.LOGISTICS or msg.logistics is None:
        raise UnbuildableError("not a Pasientlogistikk message")
    if msg.logistics is Logistics.ANSWER:
        raise UnbuildableError("TilbakemeldingUtskrivningsklarPasient exists only in PLO 2.0")
    if not msg.events:
        raise UnbuildableError("a Pasientlogistikk message needs a TidsfestetHendelse")
    doc = etree.Element(
        x.q(NS_LOGISTICS, "Pasientlogistikk"), nsmap={"p1": NS_LOGISTICS, None: NS_PO, "fk1": NS_FK1}
    )
    info = x.sub(doc, NS_PO, "InformasjonOmForsendelsen")
    x.put_coded(
        info, NS_PO, "Forsendelsesstatus", Coded(code=msg.kind.value, display=_KIND_DISPLAY[msg.kind])
    )
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
    """The whole message: MsgHead with the business document."""
    business = msghead.Document(
        ref_doc=msghead.RefDoc(
            msg_type=msghead.XML_INSTANCE, issue_date=msg.issue_date, content=build_logistics_document(msg)
        )
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
