"""M241 Samtykkeregistrering (abonnement, 2009-02-20) and M242 Svar samtykke (2008-10-03): parse and build.

The M241 registers (Samtykkeverdi 1 ja) or withdraws (2 nei) the patient's consent to a subscription, e.g.
to dispense reports; RF answers with an M242 (its ConversationRef names the M241).
"""

from __future__ import annotations

from lxml import etree

from app.adapters.eresept.messages import open_envelope, required_date, wrap_single
from app.adapters.eresept.model import Consent, ConsentReply
from app.adapters.kith import _xml as x
from app.adapters.kith.model import Coded

NS_M241 = "http://www.kith.no/xmlstds/eresept/m241/2009-02-20"
NS_M242 = "http://www.kith.no/xmlstds/eresept/m242/2008-10-03"
TYPE_M241 = Coded(code="ERM241", display="Samtykkeregistrering")
TYPE_M242 = Coded(code="ERM242", display="Svar samtykke")


def parse_m241(data: bytes | etree._Element) -> Consent:
    envelope, el = open_envelope(data, NS_M241, "Samtykke")
    return Consent(
        envelope=envelope,
        given_by=x.coded(x.require(el, NS_M241, "SamtykkeGittAv")) or Coded(),
        valid_until=required_date(el, NS_M241, "SamtykkeTil"),
        kind=x.coded(x.require(el, NS_M241, "TypeSamtykke")) or Coded(),
        value=x.coded(el, NS_M241, "Samtykkeverdi"),
    )


def build_m241(consent: Consent) -> etree._Element:
    el = etree.Element(x.q(NS_M241, "Samtykke"), nsmap={None: NS_M241})
    x.put_coded(el, NS_M241, "SamtykkeGittAv", consent.given_by, cv=False)
    x.put_date(el, NS_M241, "SamtykkeTil", consent.valid_until)
    x.put_coded(el, NS_M241, "TypeSamtykke", consent.kind, cv=False)
    x.put_coded(el, NS_M241, "Samtykkeverdi", consent.value, cv=False)
    return wrap_single(consent.envelope, TYPE_M241, el)


def parse_m242(data: bytes | etree._Element) -> ConsentReply:
    envelope, el = open_envelope(data, NS_M242, "SvarSamtykke")
    return ConsentReply(
        envelope=envelope,
        answer=x.coded(x.require(el, NS_M242, "Svar")) or Coded(),
        reason=x.coded(el, NS_M242, "Begrunnelse"),
    )


def build_m242(reply: ConsentReply) -> etree._Element:
    el = etree.Element(x.q(NS_M242, "SvarSamtykke"), nsmap={None: NS_M242})
    x.put_coded(el, NS_M242, "Svar", reply.answer, cv=False)
    x.put_coded(el, NS_M242, "Begrunnelse", reply.reason, cv=False)
    return wrap_single(reply.envelope, TYPE_M242, el)
