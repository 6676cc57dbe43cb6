"""PLO business documents in a MsgHead: read by namespace (1.5, 1.6, 2.0) into `model.PloMessage`.

Pure. The MsgHead is read by `kith.msghead` (the untrusted bytes by `kith.xmlsafe`, in the intake). Parts
are found by local name inside the document, since the poKomponent/EPJ namespaces differ between versions
but the names do not. Never copies element text into an error message.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import TypeAlias

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith._henv_common import parse_related_persons
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded, Organisation
from app.adapters.kith.model import RelatedPerson as RelatedPersonT
from app.adapters.plo import fields
from app.adapters.plo.model import (
    ContactPerson,
    Diagnosis,
    Event,
    Family,
    Function,
    Kind,
    Logistics,
    Medication,
    PloMessage,
    PloVersion,
    Section,
    Service,
)

Element: TypeAlias = etree._Element
_KITH = "http://www.kith.no/xmlstds/po"
_EHELSE = "http://ehelse.no/xmlstds/po"
NAMESPACES: dict[str, tuple[Family, PloVersion]] = {
    f"{_KITH}/Pasientlogistikk/2009-06-30": (Family.LOGISTICS, PloVersion.V1_5),
    f"{_KITH}/Pasientlogistikk/2012-04-01": (Family.LOGISTICS, PloVersion.V1_6),
    f"{_EHELSE}/Pasientlogistikk/2016-05-30": (Family.LOGISTICS, PloVersion.V2_0),
    f"{_KITH}/Innleggelsesrapport/2009-06-30": (Family.ADMISSION_REPORT, PloVersion.V1_5),
    f"{_KITH}/Innleggelsesrapport/2012-04-01": (Family.ADMISSION_REPORT, PloVersion.V1_6),
    f"{_KITH}/TverrfagligEpikrise/2009-06-30": (Family.DISCHARGE_REPORT, PloVersion.V1_5),
    f"{_KITH}/TverrfagligEpikrise/2012-04-01": (Family.DISCHARGE_REPORT, PloVersion.V1_6),
    f"{_KITH}/Konsultasjon/2009-06-30": (Family.HEALTH_INFO_GP, PloVersion.V1_5),
    f"{_KITH}/HelseopplysningerTilLege/2012-04-01": (Family.HEALTH_INFO_GP, PloVersion.V1_6),
    f"{_KITH}/HelseopplysningerVedSoknad/2009-06-30": (Family.HEALTH_INFO, PloVersion.V1_5),
    f"{_KITH}/HelseopplysningerVedSoknad/2012-04-01": (Family.HEALTH_INFO, PloVersion.V1_6),
    f"{_EHELSE}/HelseopplysningerSaksbehandling/2016-05-30": (Family.HEALTH_INFO, PloVersion.V2_0),
    f"{_KITH}/OverforingMedisinskeOpplysninger/2009-06-30": (Family.MEDICAL_INFO, PloVersion.V1_5),
    f"{_KITH}/MedisinskeOpplysninger/2012-04-01": (Family.MEDICAL_INFO, PloVersion.V1_6),
    f"{_KITH}/OrienteringOmTjenestetilbud/2009-06-30": (Family.SERVICE_INFO, PloVersion.V1_5),
    f"{_KITH}/OrienteringOmTjenestetilbud/2012-04-01": (Family.SERVICE_INFO, PloVersion.V1_6),
    f"{_EHELSE}/Sammenfatning/2016-05-30": (Family.SUMMARY, PloVersion.V2_0),
}
# Headings of the report sections (by element name); other parts keep their element name as heading.
SECTION_TITLES = {
    "TilleggsopplysningPasient": "Tilleggsopplysninger om pasienten",
    "ParorendeForesatt": "Pårørende/foresatte",
    "TilknyttetEnhet": "Kontaktenhet",
    "AnsvarForRapport": "Ansvarlig for rapporten",
    "KontaktpersonHelsepersonell": "Kontaktperson",
    "InfoMedisinskDiagnose": "Diagnoser",
    "MedisinskfagligeOpplysninger": "Medisinskfaglige opplysninger",
    "Legemiddelinfo": "Legemidler",
    "EksisterendeTjeneste": "Eksisterende tjenester",
    "TjenesteBehov": "Tjenestebehov",
    "InfoKartleggingFunksjonsniva": "Funksjonsnivå",
    "OpplysningOpphold": "Opplysninger om oppholdet",
    "TypeInnholdIMelding": "Innhold i meldingen",
    "InfoSykepleie": "Sykepleie",
    "Hjelpemiddel": "Hjelpemidler",
}
_NOT_SECTIONS = frozenset({"InformasjonOmForsendelsen"})
# what a part keeps structured (Condition, Observation) instead of in its fields
_STRUCTURED = {
    "InfoMedisinskDiagnose": frozenset({"MedisinskDiagnose"}),
    "InfoKartleggingFunksjonsniva": frozenset({"KartlagtFunksjon"}),
}
# kept only as ServiceRequests, MedicationStatements, RelatedPersons: no fields (`build_report` writes them)
_STRUCTURED_PARTS = frozenset(
    {"EksisterendeTjeneste", "Legemiddelinfo", "ParorendeForesatt", "KontaktpersonHelsepersonell"}
)


def business_document(root: Element) -> Element | None:
    if root.tag != x.q(msghead.NS, "MsgHead"):
        return None
    path = f"{{{msghead.NS}}}Document/{{{msghead.NS}}}RefDoc/{{{msghead.NS}}}Content/*"
    return next((c for c in root.iterfind(path) if isinstance(c.tag, str)), None)


def is_plo(root: Element) -> bool:
    """A MsgHead whose (first) business document is a PLO document of a known namespace."""
    doc = business_document(root)
    return doc is not None and x.namespace(doc) in NAMESPACES


# --- helpers by local name ------------------------------------------------------------------------------


def _all(el: Element, name: str) -> list[Element]:
    return [d for d in el.iter() if isinstance(d.tag, str) and x.local(d) == name]


def _kid(el: Element | None, name: str) -> Element | None:
    if el is None:
        return None
    return next((c for c in el if isinstance(c.tag, str) and x.local(c) == name), None)


def _text(el: Element | None, name: str) -> str | None:
    found = _kid(el, name)
    value = None if found is None else (found.text or "").strip() or found.get("V")
    return value or None


def _coded(el: Element | None, name: str) -> Coded | None:
    found = _kid(el, name)
    return None if found is None else x.coded(found)


def _when(value: str | None, tag: str) -> datetime | date | None:
    if not value:
        return None
    if "T" in value:
        return x.to_datetime(value, tag)
    return x.to_date(value, tag)


def _bool(el: Element | None, name: str) -> bool | None:
    return x.to_bool(_text(el, name), name)


# --- the parts ------------------------------------------------------------------------------------------


def _event(el: Element) -> Event:
    when = _when(_text(el, "TidspunktForHendelse"), "TidspunktForHendelse")
    if when is None:
        raise KithError(AppRecError.NOT_VALID, "TidsfestetHendelse without <TidspunktForHendelse>")
    return Event(
        code=_coded(el, "Hendelsekode"),
        time=when,
        estimated=_bool(el, "Anslag"),
        description=_text(el, "BeskrivelseAvHendelse"),
        remark=_text(el, "Merknad"),
    )


def _responsible(msg: PloMessage, doc: Element) -> PloMessage:
    """The first AnsvarForRapport (a report that has more keeps the others in its part's fields)."""
    resp = _kid(doc, "AnsvarForRapport")
    person = _kid(resp, "AnsvarligRapport")
    return replace(
        msg,
        responsible=None if person is None else x.parse_professional(person, _fk1(person) or ""),
        approved=_day(resp, "GodkjentDato") if resp is not None else None,
        responsible_relation=_coded(resp, "TypeRelasjon"),
        responsible_note=_text(resp, "Merknad"),
    )


def _contacts(doc: Element) -> tuple[ContactPerson, ...]:
    out = []
    for el in doc:
        person = _kid(el, "Kontaktperson") if _named(el, "KontaktpersonHelsepersonell") else None
        if person is not None:
            out.append(ContactPerson(x.parse_professional(person, _fk1(person) or ""), _text(el, "Merknad")))
    return tuple(out)


def _unit(el: Element) -> Organisation:
    fk1 = _fk1(el) or ""
    return Organisation(
        name=x.text(el, fk1, "OrganisationName"),
        idents=tuple(x.parse_ident(i, fk1) for i in x.children(el, fk1, "Ident")),
        address=x.parse_address(x.child(el, fk1, "Address"), fk1),
        telecoms=x.parse_telecoms(el, fk1),
    )


def _units(doc: Element) -> tuple[Organisation, ...]:
    return tuple(
        _unit(unit) for el in _all(doc, "TilknyttetEnhet") if (unit := _kid(el, "Kontaktenhet")) is not None
    )


def _related(doc: Element) -> tuple[RelatedPersonT, ...]:
    first = next((el for el in doc if isinstance(el.tag, str) and x.local(el) == "ParorendeForesatt"), None)
    return () if first is None else parse_related_persons(doc, x.namespace(first) or "")


def _fk1(person: Element) -> str | None:
    first = next((c for c in person if isinstance(c.tag, str)), None)
    return None if first is None else x.namespace(first)


def _content_text(el: Element) -> str:
    """The readable content of a part: each value (text, or a code's display) once, one per line."""
    lines: list[str] = []
    for d in el.iter():
        if not isinstance(d.tag, str):
            continue
        value = (d.text or "").strip() if len(d) == 0 else ""
        coded = d.get("DN") or d.get("OT")
        if coded:
            value = coded if not value else f"{coded}: {value}"
        elif not value and d.get("V") is not None and len(d) == 0:
            value = " ".join(v for v in (d.get("V"), d.get("U")) if v)
        if value:
            lines.append(f"{x.local(d)}: {' '.join(value.split())}")
    return "\n".join(lines)


def _sections(doc: Element) -> tuple[Section, ...]:
    groups: list[tuple[str, list[Element]]] = []
    for c in doc:
        if not isinstance(c.tag, str) or x.local(c) in _NOT_SECTIONS:
            continue
        name = x.local(c)
        if groups and groups[-1][0] == name:
            groups[-1][1].append(c)
        else:
            groups.append((name, [c]))
    ns = x.namespace(doc)
    return tuple(
        Section(
            name,
            SECTION_TITLES.get(name, name),
            "\n\n".join(_content_text(e) for e in els),
            ()
            if name in _STRUCTURED_PARTS
            else tuple(
                fields.read(e, ns, _STRUCTURED.get(name, frozenset()))
                # the first AnsvarForRapport is the model's `responsible` (a Practitioner)
                for e in (els[1:] if name == "AnsvarForRapport" else els)
            ),
        )
        for name, els in groups
    )


def _top(doc: Element, part: str, name: str) -> list[Element]:
    """`name` elements of the document's top-level `part`s (the ones kept structured)."""
    return [e for p in doc if isinstance(p.tag, str) and x.local(p) == part for e in p if _named(e, name)]


def _named(el: Element, name: str) -> bool:
    return isinstance(el.tag, str) and x.local(el) == name


def _medication(el: Element) -> Medication:
    simple = _kid(el, "ForenkletForskrivning")
    info = _kid(simple, "Forskrivningsinfo")
    strength_el = _kid(info, "Styrke")
    strength = None
    if strength_el is not None and strength_el.get("V"):
        strength = " ".join(v for v in (strength_el.get("V"), strength_el.get("U")) if v)
    prescriber = _kid(simple, "Forskriver")
    return Medication(
        name=_text(info, "Navn"),
        form=_coded(info, "Legemiddelform"),
        strength=strength,
        dosage_text=_text(info, "DosVeiledEnkel"),
        use=_coded(info, "Bruk"),
        start=_when(_text(info, "DoseringStarttidspunkt"), "DoseringStarttidspunkt"),
        remark=_text(simple, "Merknad"),
        multidose=_coded(simple, "InngaarIMultidose"),
        end=_when(_text(info, "DoseringSluttidspunkt"), "DoseringSluttidspunkt"),
        status=_coded(simple, "StatusTilForskrivningen"),
        prescription_id=_text(simple, "ReseptId"),
        prescriber=None if prescriber is None else fields.read(prescriber, None),
        usage_text=_text(info, "BruksomradeTekst"),
        number=_text(info, "Nr"),
        generic_name=_text(info, "GeneriskNavn"),
        atc=_coded(info, "Atc"),
        not_with_other=_bool(info, "SkalIkkeTasSammenMedAnnetLegemiddel"),
        component_id=el.get("komponentID"),
        category=el.get(x.q(fields.WRITTEN["m1"], "informasjonskategori")),
    )


def _day(el: Element, name: str) -> date | None:
    value = _text(el, name)
    return None if value is None else x.to_date(value[:10], name)


def _service(el: Element) -> Service:
    """EksisterendeTjeneste (a service the patient has)."""
    return Service(
        type=_coded(el, "IPLOStjenestetype"),
        text=_text(el, "BetegnelseTjeneste"),
        existing=True,
        private=_bool(el, "PrivatTjeneste"),
        provider=_text(el, "TjenestenLevertAv"),
        info=_text(el, "OpplysningerOmTjenesten"),
        amount=_text(el, "AntallEnheter"),
        unit=_text(el, "Enhet"),
        start=_day(el, "Startdato"),
        end=_day(el, "Sluttdato"),
        remark=_text(el, "Merknad"),
    )


def _needed(el: Element) -> Service:
    """TjenesteBehov (a service asked for: kept in its part's fields, this is the FHIR view)."""
    text = _text(el, "BetegnelseTjeneste") or _text(el, "BeskrivelseAvTjeneste")
    return Service(type=_coded(el, "IPLOStjenestetype"), text=text, existing=False)


def _function(el: Element) -> Function:
    level = _text(el, "Vurdering")
    return Function(
        _coded(el, "Funksjonsvariabel") or Coded(),
        None if level is None else Coded(code=level),
        _text(el, "Merknad"),
    )


def _kind(doc: Element) -> Kind:
    # 1.x: a child of the document; 2.0: inside FellesAdministrativeOpplysninger
    info = _kid(doc, "InformasjonOmForsendelsen")
    if info is None:
        info = _kid(_kid(doc, "FellesAdministrativeOpplysninger"), "InformasjonOmForsendelsen")
    status = _coded(info, "Forsendelsesstatus")
    if status is None or status.code is None:
        return Kind.NEW
    try:
        return Kind(status.code)
    except ValueError:
        raise KithError(AppRecError.NOT_VALID, "unknown <Forsendelsesstatus> (N, M or C)") from None


def parse_plo(root: Element) -> PloMessage:
    """A PLO message in its MsgHead; T10 for a business document that is not PLO, T02 for gaps."""
    head = msghead.parse_msghead(root)
    doc = business_document(root)
    ns = None if doc is None else x.namespace(doc)
    if doc is None or ns not in NAMESPACES:
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, "business document is not a PLO message")
    family, version = NAMESPACES[ns]
    first = next(d for d in head.documents if d.ref_doc.content is not None)
    common = PloMessage(
        version=version,
        family=family,
        kind=_kind(doc),
        msg_id=head.msg_id,
        msg_type=head.msg_type,
        gen_date=head.gen_date,
        sender=head.sender,
        receiver=head.receiver,
        patient=head.patient,
        issue_date=first.ref_doc.issue_date,
        conversation=head.conversation_ref,
    )
    if family is Family.LOGISTICS:
        part = next((c for c in doc if isinstance(c.tag, str) and x.namespace(c) == ns), None)
        try:
            logistics = Logistics(x.local(part)) if part is not None else None
        except ValueError:
            logistics = None
        if part is None or logistics is None:
            raise KithError(AppRecError.NOT_VALID, "a Pasientlogistikk without a known message element")
        out = _kid(part, "UtskrevetTil")
        discharged_to = tuple(c for e in (out if out is not None else []) if (c := x.coded(e)) is not None)
        events = tuple(_event(e) for e in _all(part, "TidsfestetHendelse"))
        common = _people(common, doc)
        return replace(common, logistics=logistics, events=events, discharged_to=discharged_to)
    return read_report(common, doc)


def _people(msg: PloMessage, doc: Element) -> PloMessage:
    return replace(
        _responsible(msg, doc),
        contacts=_contacts(doc),
        contact_units=_units(doc),
        related_persons=_related(doc),
    )


def read_report(common: PloMessage, doc: Element) -> PloMessage:
    """A report's content read from its business document (also the document `build_report` writes from
    FHIR, so both directions read it the same way)."""
    return replace(
        _people(common, doc),
        document=x.local(doc),
        events=tuple(_event(e) for e in _all(doc, "TidsfestetHendelse")),
        sections=_sections(doc),
        diagnoses=tuple(  # one in words only has an empty code (it is not in the part's fields)
            Diagnosis(
                _coded(d, "Diagnosekode") or Coded(),
                _bool(d, "Hoveddiagnose"),
                _text(d, "DiagnoseBeskrivelse"),
            )
            for d in _top(doc, "InfoMedisinskDiagnose", "MedisinskDiagnose")
        ),
        medications=tuple(_medication(m) for m in doc if _named(m, "Legemiddelinfo")),
        functions=tuple(_function(e) for e in _top(doc, "InfoKartleggingFunksjonsniva", "KartlagtFunksjon")),
        services=tuple(_service(e) for e in doc if _named(e, "EksisterendeTjeneste"))
        + tuple(_needed(e) for e in _all(doc, "TjenesteBehov")),
    )
