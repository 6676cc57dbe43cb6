"""The PLO model -> a report's business document, PLO 1.6 (pure; the MsgHead is `build.build_plo`'s).

The parts are written in the model's order (the document's, which is the XSD's): each section's elements
from its `fields`, the existing services (`EksisterendeTjeneste`, from `msg.services`) and the medicines
(`epj3:Legemiddelinfo`, from `msg.medications`) and the next of kin (`ParorendeForesatt`, from
`msg.related_persons`), the contact persons (`KontaktpersonHelsepersonell`, from `msg.contacts`) at the
first such part, the responsible professional as the first `AnsvarForRapport`, the diagnoses (`MedisinskDiagnose`) into the first `InfoMedisinskDiagnose` and the
mapped functions (`KartlagtFunksjon`) into `InfoKartleggingFunksjonsniva` after its overall assessment,
in the poKomponent order. A 1.5 report is written as 1.6 (same elements, 1.6 namespaces); 2.0's reports
(HelseopplysningerSaksbehandling, Sammenfatning) have another structure and are refused.
"""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith._henv_common import put_related_persons
from app.adapters.plo import fields
from app.adapters.plo.fields import NS_FK1, NS_PO
from app.adapters.plo.model import (
    Diagnosis,
    Function,
    Medication,
    PloMessage,
    PloVersion,
    Section,
    Service,
    UnbuildableError,
)
from app.adapters.plo.parse import NAMESPACES

REPORT_NS = {family: ns for ns, (family, version) in NAMESPACES.items() if version is PloVersion.V1_6}
EPJ3, M1 = fields.WRITTEN["epj3"], fields.WRITTEN["m1"]
RESOURCE_PARTS = frozenset(
    {"EksisterendeTjeneste", "Legemiddelinfo", "ParorendeForesatt", "KontaktpersonHelsepersonell"}
)
_BEFORE_FUNCTIONS = frozenset({"SamletVurderingFunksjonsniva"})  # the rest of the part comes after them


def _diagnoses(el: etree._Element, diagnoses: tuple[Diagnosis, ...]) -> None:
    for d in diagnoses:
        part = x.sub(el, NS_PO, "MedisinskDiagnose")
        x.put_bool(part, NS_PO, "Hoveddiagnose", d.main)
        if d.code.code is not None or d.code.display is not None or d.code.original_text is not None:
            x.put_coded(part, NS_PO, "Diagnosekode", d.code)
        x.opt_text(part, NS_PO, "DiagnoseBeskrivelse", d.description)


def _function(el: etree._Element, fn: Function) -> None:
    part = x.sub(el, NS_PO, "KartlagtFunksjon")
    if fn.variable.code is not None or fn.variable.display is not None:
        x.put_coded(part, NS_PO, "Funksjonsvariabel", fn.variable)
    x.opt_text(part, NS_PO, "Vurdering", None if fn.level is None else fn.level.code)
    x.opt_text(part, NS_PO, "Merknad", fn.remark)


def _service(doc: etree._Element, s: Service) -> None:
    """EksisterendeTjeneste; PrivatTjeneste is required: a service that did not say is not private."""
    el = x.sub(doc, NS_PO, "EksisterendeTjeneste")
    x.put_coded(el, NS_PO, "IPLOStjenestetype", s.type)
    x.opt_text(el, NS_PO, "BetegnelseTjeneste", s.text)
    x.put_bool(el, NS_PO, "PrivatTjeneste", bool(s.private))
    for name, value in (
        ("TjenestenLevertAv", s.provider),
        ("OpplysningerOmTjenesten", s.info),
        ("AntallEnheter", s.amount),
        ("Enhet", s.unit),
    ):
        x.opt_text(el, NS_PO, name, value)
    x.put_date(el, NS_PO, "Startdato", s.start)
    x.put_date(el, NS_PO, "Sluttdato", s.end)
    x.opt_text(el, NS_PO, "Merknad", s.remark)


def _medication(doc: etree._Element, m: Medication) -> None:
    """epj3:Legemiddelinfo (its EPJ component type attributes are fixed by the XSD); Navn is required."""
    el = x.sub(doc, EPJ3, "Legemiddelinfo")
    if m.category is not None:
        el.set(x.q(M1, "informasjonskategori"), m.category)
    if m.component_id is not None:
        el.set("komponentID", m.component_id)
    el.set(x.q(M1, "komponenttype"), "2.16.578.1.12.4.1.6.13.10301.0")
    el.set(x.q(M1, "basiskomponenttype"), "EPJ dokument")
    simple = x.sub(el, EPJ3, "ForenkletForskrivning")
    x.put_coded(simple, EPJ3, "StatusTilForskrivningen", m.status, cv=False)
    x.put_coded(simple, EPJ3, "InngaarIMultidose", m.multidose, cv=False)
    x.opt_text(simple, EPJ3, "ReseptId", m.prescription_id)
    x.opt_text(simple, EPJ3, "Merknad", m.remark)
    if m.prescriber is not None:
        fields.write(simple, m.prescriber, EPJ3)
    info = x.sub(simple, EPJ3, "Forskrivningsinfo")
    x.opt_text(info, EPJ3, "BruksomradeTekst", m.usage_text)
    x.opt_text(info, EPJ3, "DosVeiledEnkel", m.dosage_text)
    x.opt_text(info, EPJ3, "Nr", m.number)
    x.sub(info, EPJ3, "Navn", m.name or "")
    x.opt_text(info, EPJ3, "GeneriskNavn", m.generic_name)
    x.put_coded(info, EPJ3, "Atc", m.atc, cv=False)
    x.put_coded(info, EPJ3, "Legemiddelform", m.form, cv=False)
    if m.strength is not None:
        value, _, unit = m.strength.partition(" ")
        strength = x.sub(info, EPJ3, "Styrke")
        strength.set("V", value)
        if unit:
            strength.set("U", unit)
    x.put_coded(info, EPJ3, "Bruk", m.use, cv=False)
    x.put_ts_attr(info, EPJ3, "DoseringStarttidspunkt", m.start)
    x.put_ts_attr(info, EPJ3, "DoseringSluttidspunkt", m.end)
    x.put_bool(info, EPJ3, "SkalIkkeTasSammenMedAnnetLegemiddel", m.not_with_other)


def _responsible(doc: etree._Element, msg: PloMessage) -> None:
    """The first AnsvarForRapport (the others are the part's fields)."""
    if msg.responsible is None:
        return
    el = x.sub(doc, NS_PO, "AnsvarForRapport")
    x.fill_professional(x.sub(el, NS_PO, "AnsvarligRapport"), NS_FK1, msg.responsible)
    x.put_date(el, NS_PO, "GodkjentDato", msg.approved)
    x.put_coded(el, NS_PO, "TypeRelasjon", msg.responsible_relation)
    x.opt_text(el, NS_PO, "Merknad", msg.responsible_note)


def _resources_part(doc: etree._Element, element: str, msg: PloMessage) -> None:
    """A part kept only as FHIR resources, all of its elements at once (the XSD keeps them together)."""
    if element == "KontaktpersonHelsepersonell":
        for contact in msg.contacts:
            el = x.sub(doc, NS_PO, "KontaktpersonHelsepersonell")
            x.fill_professional(x.sub(el, NS_PO, "Kontaktperson"), NS_FK1, contact.professional)
            x.opt_text(el, NS_PO, "Merknad", contact.note)
    elif element == "ParorendeForesatt":
        put_related_persons(doc, NS_PO, msg.related_persons, False, birth_year=True)
    elif element == "EksisterendeTjeneste":
        for service in msg.services:
            if service.existing:
                _service(doc, service)
    else:
        for m in msg.medications:
            _medication(doc, m)


def _section(doc: etree._Element, s: Section, msg: PloMessage, ns: str, written: set[str]) -> None:
    first = s.element not in written
    written.add(s.element)
    if s.element in RESOURCE_PARTS:
        if first:
            _resources_part(doc, s.element, msg)
        return
    if s.element == "AnsvarForRapport" and first:
        _responsible(doc, msg)
    for n, field in enumerate(s.fields):
        if s.element == "InfoKartleggingFunksjonsniva" and first and n == 0:
            before = tuple(c for c in field.children if c.name in _BEFORE_FUNCTIONS)
            el = fields.write(doc, replace(field, children=before), ns)
            for fn in msg.functions:
                _function(el, fn)
            for child in field.children:
                if child not in before:
                    fields.write(el, child, ns)
        else:
            el = fields.write(doc, field, ns)
            if s.element == "InfoMedisinskDiagnose" and first and n == 0:
                _diagnoses(el, msg.diagnoses)


def build_report_document(msg: PloMessage) -> etree._Element:
    """The report's business document (without MsgHead), PLO 1.6."""
    ns = REPORT_NS.get(msg.family)
    if ns is None or msg.version is PloVersion.V2_0 or msg.document is None:
        raise UnbuildableError(f"a {msg.family.display} {msg.version.value} is not written as PLO 1.6")
    missing = [
        name
        for name, element, held in (
            ("diagnoses", "InfoMedisinskDiagnose", msg.diagnoses),
            ("functions", "InfoKartleggingFunksjonsniva", msg.functions),
            ("services", "EksisterendeTjeneste", tuple(s for s in msg.services if s.existing)),
            ("medicines", "Legemiddelinfo", msg.medications),
            ("next of kin", "ParorendeForesatt", msg.related_persons),
            ("contact persons", "KontaktpersonHelsepersonell", msg.contacts),
            ("a responsible professional", "AnsvarForRapport", (msg.responsible,) if msg.responsible else ()),
        )
        if held and not any(s.element == element for s in msg.sections)
    ]
    if missing:  # a Condition or Observation without the part of the document that holds it
        raise UnbuildableError(f"the report has {', '.join(missing)} but no part to hold them")
    nsmap = {"p1": ns, None: NS_PO} | {k: v for k, v in fields.WRITTEN.items() if k != "po"}
    doc = etree.Element(x.q(ns, msg.document), nsmap=nsmap)
    info = x.sub(doc, NS_PO, "InformasjonOmForsendelsen")
    x.put_coded(info, NS_PO, "Forsendelsesstatus", fields.kind_coded(msg.kind))
    written: set[str] = set()
    for s in msg.sections:
        _section(doc, s, msg, ns, written)
    return doc
