"""M96 Reseptliste (rekvirent, 2015-05-01): parse and build.

The list document says which prescriptions RF holds and their state; the prescriptions themselves follow
as complete M1 messages, each base64-encoded in a MsgHead Document of its own. Those are decoded and read
by the same hardened path as any incoming message (size limit, no DTD, declared encoding).
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal, InvalidOperation

from lxml import etree

from app.adapters.eresept.messages import build_m1, open_envelope, parse_m1, wrap_documents
from app.adapters.eresept.model import ListedDispense, ListedPrescription, PrescriptionList
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded
from app.adapters.kith.msghead import XML_INSTANCE, Document, RefDoc, parse_msghead
from app.adapters.kith.xmlsafe import parse_xml, to_bytes

NS_M96 = "http://www.kith.no/xmlstds/eresept/m96/2015-05-01"
TYPE_M96 = Coded(code="ERM96", display="Reseptliste (rekvirent)")


def _decimal(el: etree._Element, tag: str) -> Decimal:
    raw = x.required_text(el, NS_M96, tag)
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise KithError(AppRecError.NOT_VALID, f"invalid number in <{tag}>") from None


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
    prescriptions = []
    for doc in parse_msghead(root).documents:
        if doc.ref_doc.base64 is None:
            continue
        try:
            embedded = base64.b64decode(doc.ref_doc.base64, validate=True)
        except (binascii.Error, ValueError):
            raise KithError(AppRecError.NOT_VALID, "a Base64Container is not valid base64") from None
        prescriptions.append(parse_m1(embedded))
    return PrescriptionList(
        envelope=envelope,
        items=tuple(_item(i) for i in x.children(el, NS_M96, "Listeelement")),
        prescriptions=tuple(prescriptions),
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
    documents = [Document(ref_doc=RefDoc(msg_type=XML_INSTANCE, content=el))]
    for rx in prescription_list.prescriptions:
        encoded = base64.b64encode(to_bytes(build_m1(rx))).decode("ascii")
        documents.append(Document(ref_doc=RefDoc(msg_type=XML_INSTANCE, base64=encoded)))  # as RF does
    return wrap_documents(prescription_list.envelope, TYPE_M96, tuple(documents))
