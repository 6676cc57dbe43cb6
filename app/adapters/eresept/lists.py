"""RF's answers about prescriptions: M96 Reseptliste (rekvirent, 2015-05-01), M92 Reseptliste
(utleverer, 2013-10-08) and M94 Nedlasting av resept (2010-07-01): parse and build.

The M96 list document says which prescriptions RF holds and their state; the prescriptions themselves
follow as complete M1 messages, each base64-encoded in a MsgHead Document of its own (so does the one M1
of an M94). Those are decoded and read by the same hardened path as any incoming message (size limit, no
DTD, declared encoding). The M92 lists summaries (m92:Reseptinfo) and carries no M1.
"""

from __future__ import annotations

import base64
from decimal import Decimal

from lxml import etree

from app.adapters.eresept._forskrivning import to_decimal
from app.adapters.eresept._reseptinfo import (
    NS_M92,
    parse_info,
    parse_user,
    put_doctor,
    put_info,
    put_pharmacy,
)
from app.adapters.eresept.messages import (
    build_m1,
    from_base64,
    open_envelope,
    parse_m1,
    required_date,
    wrap_documents,
    wrap_single,
    xs_date,
)
from app.adapters.eresept.model import (
    CoPayment,
    DispenserList,
    Download,
    ListedDispense,
    ListedPrescription,
    Prescription,
    PrescriptionList,
)
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded, Quantity
from app.adapters.kith.msghead import XML_INSTANCE, Document, RefDoc, parse_msghead
from app.adapters.kith.xmlsafe import parse_xml, to_bytes

NS_M96 = "http://www.kith.no/xmlstds/eresept/m96/2015-05-01"
NS_M94 = "http://www.kith.no/xmlstds/eresept/m94/2010-07-01"
TYPE_M96 = Coded(code="ERM96", display="Reseptliste (rekvirent)")
TYPE_M92 = Coded(code="ERM92", display="Reseptliste (utleverer)")
TYPE_M94 = Coded(code="ERM94", display="Nedlasting av resept")


def _decimal(el: etree._Element, tag: str) -> Decimal:
    return to_decimal(x.required_text(el, NS_M96, tag), tag) or Decimal(0)


def embedded_m1s(root: etree._Element) -> tuple[Prescription, ...]:
    """The M1 messages of the MsgHead's base64 Documents (M94, M96), read by the hardened parser."""
    prescriptions = []
    for doc in parse_msghead(root).documents:
        if doc.ref_doc.base64 is None:
            continue
        prescriptions.append(parse_m1(from_base64(doc.ref_doc.base64, "a Base64Container")))
    return tuple(prescriptions)


def _document(business: etree._Element) -> Document:
    return Document(ref_doc=RefDoc(msg_type=XML_INSTANCE, content=business))


def _m1_document(rx: Prescription) -> Document:
    encoded = base64.b64encode(to_bytes(build_m1(rx))).decode("ascii")
    return Document(ref_doc=RefDoc(msg_type=XML_INSTANCE, base64=encoded))  # as RF sends it


def _listed_dispense(el: etree._Element) -> ListedDispense:
    last = x.to_datetime(x.text(el, NS_M96, "TidspunktSisteUtlevering"), "TidspunktSisteUtlevering")
    if last is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <TidspunktSisteUtlevering> is missing")
    return ListedDispense(
        name_form_strength=x.required_text(el, NS_M96, "NavnFormStyrke"),
        packages_total=_decimal(el, "AntallPakningerUtlevertTotalt"),
        packages_last=_decimal(el, "AntallPakningerUtlevertSiste"),
        last_dispensed=last,
        item_number=x.ident_text(el, NS_M96, "Varenr"),
        package_size=x.quantity(x.child(el, NS_M96, "Pakningsstr")),
    )


def _item(el: etree._Element) -> ListedPrescription:
    return ListedPrescription(
        prescription_id=x.required_text(el, NS_M96, "ReseptId"),
        status=x.coded(x.require(el, NS_M96, "Status")) or Coded(),
        dispenser_name=x.text(el, NS_M96, "NavnUtleverer"),
        recalled=x.to_bool(x.text(el, NS_M96, "TilbakekallingStatus"), "TilbakekallingStatus"),
        recall_reason=x.coded(el, NS_M96, "Arsak"),
        dispenses=tuple(_listed_dispense(d) for d in x.children(el, NS_M96, "Utlevering")),
    )


def parse_m96(data: bytes | etree._Element) -> PrescriptionList:
    root = parse_xml(data) if isinstance(data, bytes) else data
    envelope, el = open_envelope(root, NS_M96, "M96")
    for tag in ("SendtSLVDato", "StatusSoknadSlv"):
        if el.find(f".//{{{NS_M96}}}{tag}") is not None:  # SLV applications: not modelled, not dropped
            raise KithError(AppRecError.NOT_VALID, f"<{tag}> is not supported yet")
    prescriptions = embedded_m1s(root)
    return PrescriptionList(
        envelope=envelope,
        items=tuple(_item(i) for i in x.children(el, NS_M96, "Listeelement")),
        prescriptions=prescriptions,
        search_status=x.coded(el, NS_M96, "StatusSok"),
    )


def _put_item(parent: etree._Element, item: ListedPrescription) -> None:
    el = x.sub(parent, NS_M96, "Listeelement")
    x.sub(el, NS_M96, "ReseptId", item.prescription_id)
    x.opt_text(el, NS_M96, "NavnUtleverer", item.dispenser_name)
    x.put_coded(el, NS_M96, "Status", item.status, cv=False)
    x.put_bool(el, NS_M96, "TilbakekallingStatus", item.recalled)
    x.put_coded(el, NS_M96, "Arsak", item.recall_reason)
    for d in item.dispenses:
        u = x.sub(el, NS_M96, "Utlevering")
        x.opt_text(u, NS_M96, "Varenr", d.item_number)
        x.sub(u, NS_M96, "NavnFormStyrke", d.name_form_strength)
        x.put_quantity(u, NS_M96, "Pakningsstr", d.package_size)
        x.sub(u, NS_M96, "AntallPakningerUtlevertTotalt", str(d.packages_total))
        x.sub(u, NS_M96, "AntallPakningerUtlevertSiste", str(d.packages_last))
        x.sub(u, NS_M96, "TidspunktSisteUtlevering", d.last_dispensed.isoformat())


def build_m96(prescription_list: PrescriptionList) -> etree._Element:
    el = etree.Element(x.q(NS_M96, "M96"), nsmap={None: NS_M96})
    if prescription_list.items:
        for item in prescription_list.items:
            _put_item(el, item)
    else:
        x.put_coded(el, NS_M96, "StatusSok", prescription_list.search_status, cv=False)
    documents = (_document(el), *(_m1_document(rx) for rx in prescription_list.prescriptions))
    return wrap_documents(prescription_list.envelope, TYPE_M96, documents)


# --- M92 ----------------------------------------------------------------------------------------------------


def parse_m92(data: bytes | etree._Element) -> DispenserList:
    envelope, el = open_envelope(data, NS_M92, "Reseptliste")
    return DispenserList(
        envelope=envelope,
        items=tuple(parse_info(i) for i in x.children(el, NS_M92, "Reseptinfo")),
        multidose_users=tuple(parse_user(u, NS_M92) for u in x.children(el, NS_M92, "Multidosebruker")),
        search_status=x.coded(el, NS_M92, "Status"),
    )


def build_m92(listing: DispenserList) -> etree._Element:
    el = etree.Element(x.q(NS_M92, "Reseptliste"), nsmap={None: NS_M92})
    x.put_coded(el, NS_M92, "Status", listing.search_status, cv=False)
    for info in listing.items:
        put_info(el, info)
    for user in listing.multidose_users:
        u = x.sub(el, NS_M92, "Multidosebruker")
        x.sub(u, NS_M92, "Fnr", user.fnr)
        put_pharmacy(u, user.pharmacy)
        put_doctor(u, user.doctor)
    return wrap_single(listing.envelope, TYPE_M92, el)


# --- M94 ----------------------------------------------------------------------------------------------------


def parse_m94(data: bytes | etree._Element) -> Download:
    root = parse_xml(data) if isinstance(data, bytes) else data
    envelope, el = open_envelope(root, NS_M94, "ReseptNedlasting")
    prescriptions = embedded_m1s(root)
    if len(prescriptions) > 1:
        raise KithError(AppRecError.NOT_VALID, "an M94 carries one prescription")
    co_payments = []
    for c in x.children(el, NS_M94, "Egenandel"):
        paid = x.quantity(x.require(c, NS_M94, "BetaltEgenandel")) or Quantity()
        co_payments.append(
            CoPayment(period_start=required_date(c, NS_M94, "StartEgenandelsperiode"), paid=paid)
        )
    return Download(
        envelope=envelope,
        status=x.coded(x.require(el, NS_M94, "Status")) or Coded(),
        prescription=prescriptions[0] if prescriptions else None,
        application_sent=xs_date(x.text(el, NS_M94, "DatoSoknadSendtSLV"), "DatoSoknadSendtSLV"),
        application_answered=xs_date(x.text(el, NS_M94, "SvarSLVDato"), "SvarSLVDato"),
        exemption_granted=x.to_bool(x.text(el, NS_M94, "InnvligetGodkjFritak"), "InnvligetGodkjFritak"),
        application_status=x.coded(el, NS_M94, "StatusSoknadSlv"),
        co_payments=tuple(co_payments),
    )


def build_m94(download: Download) -> etree._Element:
    el = etree.Element(x.q(NS_M94, "ReseptNedlasting"), nsmap={None: NS_M94})
    x.put_date(el, NS_M94, "DatoSoknadSendtSLV", download.application_sent)
    x.put_date(el, NS_M94, "SvarSLVDato", download.application_answered)
    x.put_bool(el, NS_M94, "InnvligetGodkjFritak", download.exemption_granted)
    x.put_coded(el, NS_M94, "Status", download.status, cv=False)
    x.put_coded(el, NS_M94, "StatusSoknadSlv", download.application_status, cv=False)
    for c in download.co_payments:
        e = x.sub(el, NS_M94, "Egenandel")
        x.put_date(e, NS_M94, "StartEgenandelsperiode", c.period_start)
        x.put_quantity(e, NS_M94, "BetaltEgenandel", c.paid)
    documents = [_document(el)]
    if download.prescription is not None:
        documents.append(_m1_document(download.prescription))
    return wrap_documents(download.envelope, TYPE_M94, tuple(documents))
