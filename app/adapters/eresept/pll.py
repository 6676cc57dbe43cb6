"""M912 Nedlasting av PLL (varer i bruk): parse and build, both versions whose XSDs exist.

| version | namespace | the patient element |
| --- | --- | --- |
| 2014-01-21 | `http://www.kith.no/xmlstds/eresept/m912/2014-01-21` | `Multidosepasient` |
| 2018-07-01 | `http://www.ehelse.no/xmlstds/eresept/m912/2018-07-01` | `Pasient` (adds `AndreFnr`) |

The version is found by the business document's namespace and a message is written back in the version
it was read in. The prescriptions are m92:Reseptinfo summaries and the multidose parties m274 (shared with
M92, `_reseptinfo.py`); `VarerIBrukB64` (the lists in use) is kept as its decoded bytes.
"""

from __future__ import annotations

import base64

from lxml import etree

from app.adapters.eresept import _reseptinfo as ri
from app.adapters.eresept.messages import from_base64, open_envelope, wrap_single
from app.adapters.eresept.model import MedicationsInUse
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded
from app.adapters.kith.xmlsafe import parse_xml

NS_M912_2014 = "http://www.kith.no/xmlstds/eresept/m912/2014-01-21"
NS_M912_2018 = "http://www.ehelse.no/xmlstds/eresept/m912/2018-07-01"
PATIENT_ELEMENT = {NS_M912_2014: "Multidosepasient", NS_M912_2018: "Pasient"}
TYPE_M912 = Coded(code="ERM912", display="Nedlasting av varer i bruk")
MAX_LISTS = 3  # VarerIBrukB64 maxOccurs


def parse_m912(data: bytes | etree._Element) -> MedicationsInUse:
    root = parse_xml(data) if isinstance(data, bytes) else data
    ns = next((n for n in PATIENT_ELEMENT if root.find(f".//{{{n}}}M912") is not None), NS_M912_2018)
    envelope, el = open_envelope(root, ns, "M912")  # T10 when neither version is there
    patient = x.require(el, ns, PATIENT_ELEMENT[ns])
    return MedicationsInUse(
        envelope=envelope,
        version=ns,
        patient=ri.parse_user(patient, ns),
        ref_msg_id=x.ident_text(patient, ns, "RefMsgId"),
        other_fnrs=tuple((f.text or "").strip() for f in x.children(patient, ns, "AndreFnr")),
        prescriptions=tuple(ri.parse_info(i) for i in x.children(patient, ri.NS_M92, "Reseptinfo")),
        lists=tuple(from_base64(b.text, "<VarerIBrukB64>") for b in x.children(patient, ns, "VarerIBrukB64")),
    )


def build_m912(pll: MedicationsInUse) -> etree._Element:
    ns = pll.version
    if ns not in PATIENT_ELEMENT:
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, "unknown M912 version")
    if pll.other_fnrs and ns == NS_M912_2014:
        raise KithError(AppRecError.NOT_VALID, "<AndreFnr> needs M912 2018-07-01")
    if len(pll.lists) > MAX_LISTS:
        raise KithError(AppRecError.NOT_VALID, f"at most {MAX_LISTS} <VarerIBrukB64>")
    el = etree.Element(x.q(ns, "M912"), nsmap={None: ns})
    patient = x.sub(el, ns, PATIENT_ELEMENT[ns])
    x.sub(patient, ns, "Fnr", pll.patient.fnr)
    for fnr in pll.other_fnrs:
        x.sub(patient, ns, "AndreFnr", fnr)
    x.opt_text(patient, ns, "RefMsgId", pll.ref_msg_id)
    ri.put_doctor(patient, pll.patient.doctor)
    ri.put_pharmacy(patient, pll.patient.pharmacy)
    for info in pll.prescriptions:
        ri.put_info(patient, info)
    for data in pll.lists:
        x.sub(patient, ns, "VarerIBrukB64", base64.b64encode(data).decode("ascii"))
    return wrap_single(pll.envelope, TYPE_M912, el)
