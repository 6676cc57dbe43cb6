"""M25 Legemidler i bruk and its variants M25.1–M25.4 (2013-10-08): parse and build.

One model (`model_lib.py`) for the family; each variant's XSD allows a subset of it:

| variant | namespace | Pakkeinfo | Vikar | InngarMultidose | SisteUtlevering | Seponering | Sporsmal |
| --- | --- | --- | --- | --- | --- | --- | --- |
| M25 (master) | `…/eresept/m25/2013-10-08` | x | x | x | x | x | x |
| M25.1 | `…/m251/2013-10-08` | | x | | | x | x |
| M25.2 (multidose) | `…/m252/2013-10-08` | x | | | | | x |
| M25.3 (multidose) | `…/m253/2013-10-08` | x | | x | x | | |
| M25.4 | `…/m254/2013-10-08` | | | | | | |

Writing content a variant has no element for is refused (T02), not dropped. An entry's prescription
(`ReseptDokLegemiddelB64`) is an m1:ReseptDokLegemiddel, read with the hardened parser and `_forskrivning`.
`ki:Allergi` (critical information: drug reactions) is read and written by `critical_info.py`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from app.adapters.eresept._forskrivning import NS_M1, parse_prescribed_medicine, put_prescribed_medicine
from app.adapters.eresept._reseptinfo import fk1_ident, put_fk1_ident
from app.adapters.eresept.critical_info import NS_KI, parse_allergy, put_allergy
from app.adapters.eresept.messages import from_base64, required_date, xs_date
from app.adapters.eresept.model import PrescribedMedicine
from app.adapters.eresept.model_lib import (
    ListEntry,
    ListOrganisation,
    ListPerson,
    ListRole,
    MedicationList,
    PackedDispense,
    PackingInfo,
    Question,
    Stop,
)
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded
from app.adapters.kith.xmlsafe import parse_xml, to_bytes


@dataclass(frozen=True)
class Variant:
    ns: str
    packing: bool = False  # Pakkeinfo
    substitute: bool = False  # Vikar
    multidose: bool = False  # InngarMultidose
    dispenses: bool = False  # SisteUtlevering
    stop: bool = False  # Seponering
    questions: bool = False  # Sporsmal


def _ns(name: str) -> str:
    return f"http://www.kith.no/xmlstds/eresept/{name}/2013-10-08"


VARIANTS = {
    "M25": Variant(_ns("m25"), True, True, True, True, True, True),
    "M25.1": Variant(_ns("m251"), substitute=True, stop=True, questions=True),
    "M25.2": Variant(_ns("m252"), packing=True, questions=True),
    "M25.3": Variant(_ns("m253"), packing=True, multidose=True, dispenses=True),
    "M25.4": Variant(_ns("m254")),
}


def _base64(el: etree._Element, ns: str, tag: str) -> bytes:
    return from_base64(x.required_text(el, ns, tag), f"<{tag}>")


def _datetime(el: etree._Element, ns: str, tag: str) -> datetime:
    found = x.to_datetime(x.required_text(el, ns, tag), tag)
    if found is None:  # pragma: no cover - required_text refuses an empty element first
        raise KithError(AppRecError.NOT_VALID, f"mandatory element <{tag}> is empty")
    return found


# --- reading ------------------------------------------------------------------------------------------------


def _role(el: etree._Element, ns: str) -> ListRole:
    person = x.child(el, ns, "Helseperson")
    org = x.child(el, ns, "Organisasjon")
    return ListRole(
        role=x.coded(x.require(el, ns, "Rolle")) or Coded(),
        person=None
        if person is None
        else ListPerson(
            hpr=fk1_ident(person, ns, "HprId"),
            given=x.text(person, ns, "Fornavn"),
            family=x.text(person, ns, "Etternavn"),
            speciality=x.coded(person, ns, "Spesialitet"),
        ),
        organisation=None
        if org is None
        else ListOrganisation(
            her_id=fk1_ident(org, ns, "HerId"),
            name=x.text(org, ns, "Inst"),
            department=x.text(org, ns, "Dept"),
            institution=x.coded(org, ns, "InstitusjonsID"),
        ),
    )


def _medicine(data: bytes) -> PrescribedMedicine:
    root = parse_xml(data)
    if root.tag != x.q(NS_M1, "ReseptDokLegemiddel"):
        raise KithError(AppRecError.NOT_VALID, "<ReseptDokLegemiddelB64> holds no m1:ReseptDokLegemiddel")
    return parse_prescribed_medicine(root)


def _question(el: etree._Element, ns: str) -> Question:
    answer = x.child(el, ns, "Svar")
    return Question(
        code=x.coded(x.require(el, ns, "Kode")) or Coded(),
        asked_at=_datetime(el, ns, "Tidspunkt"),
        asked_by=x.required_text(el, ns, "Stiller"),
        note=x.text(el, ns, "Merknad"),
        to=x.text(el, ns, "Mottaker"),
        answer=None if answer is None else x.coded(x.require(answer, ns, "Kode")),
        answer_note=x.text(answer, ns, "Merknad"),
    )


def _entry(el: etree._Element, ns: str) -> ListEntry:
    stop = x.child(el, ns, "Seponering")
    return ListEntry(
        id=x.required_text(el, ns, "Id"),
        type=x.coded(x.require(el, ns, "Type")) or Coded(),
        changed=_datetime(el, ns, "SistEndret"),
        medicine=_medicine(_base64(el, ns, "ReseptDokLegemiddelB64")),
        prescription_id=x.ident_text(el, ns, "ReseptId"),
        prescription_expires=xs_date(x.text(el, ns, "UtlopsdatoResept"), "UtlopsdatoResept"),
        started=xs_date(x.text(el, ns, "DatoOppstart"), "DatoOppstart"),
        multidose=x.coded(el, ns, "InngarMultidose"),
        with_change=x.to_bool(x.text(el, ns, "MedEndring"), "MedEndring"),
        roles=tuple(_role(r, ns) for r in x.children(el, ns, "Rolle")),
        dispenses=tuple(
            PackedDispense(
                first_dose=required_date(d, ns, "DatoForsteDose"),
                last_dose=required_date(d, ns, "DatoSisteDose"),
                dispense=_base64(d, ns, "UtleveringB64"),
                ref_m10=x.ident_text(d, ns, "RefM10"),
                repack_reason=x.coded(d, ns, "Ompakkingsgrunn"),
                picture=None if (ref := x.child(d, ns, "Bilderef")) is None else ref.get("V"),
            )
            for d in x.children(el, ns, "SisteUtlevering")
        ),
        stop=None
        if stop is None
        else Stop(
            at=_datetime(stop, ns, "Tidspunkt"),
            reason=x.coded(x.require(stop, ns, "Arsak")) or Coded(),
            note=x.text(stop, ns, "Merknad"),
        ),
        questions=tuple(_question(q, ns) for q in x.children(el, ns, "Sporsmal")),
    )


def parse_m25(data: bytes | etree._Element) -> MedicationList:
    """A LegemidlerIBruk document of any variant (found by its namespace; another one is T10)."""
    root = parse_xml(data) if isinstance(data, bytes) else data
    name = next((k for k, v in VARIANTS.items() if root.tag == x.q(v.ns, "LegemidlerIBruk")), None)
    if name is None:
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, "not an M25 <LegemidlerIBruk> (2013-10-08)")
    ns = VARIANTS[name].ns
    packing = x.child(root, ns, "Pakkeinfo")
    return MedicationList(
        variant=name,
        entries=tuple(_entry(e, ns) for e in x.children(root, ns, "EnkeltoppforingLIB")),
        roles=tuple(_role(r, ns) for r in x.children(root, ns, "Rolle")),
        packing=None
        if packing is None
        else PackingInfo(
            order_deadline=_datetime(packing, ns, "Bestillingsfrist"),
            first_dose=xs_date(x.text(packing, ns, "ForsteDoseringsdato"), "ForsteDoseringsdato"),
            last_dose=xs_date(x.text(packing, ns, "SisteDoseringsdato"), "SisteDoseringsdato"),
        ),
        note=x.text(root, ns, "Merknad"),
        substitute=x.coded(root, ns, "Vikar"),
        allergies=tuple(parse_allergy(a) for a in x.children(root, NS_KI, "Allergi")),
    )


# --- writing ------------------------------------------------------------------------------------------------


def _check(variant: str, lib: MedicationList) -> Variant:
    v = VARIANTS.get(variant)
    if v is None:
        raise KithError(AppRecError.UNSUPPORTED_FORMAT, f"unknown M25 variant {variant!r}")
    unsupported = [
        tag
        for tag, present, allowed in (
            ("Pakkeinfo", lib.packing is not None, v.packing),
            ("Vikar", lib.substitute is not None, v.substitute),
            ("InngarMultidose", any(e.multidose is not None for e in lib.entries), v.multidose),
            ("SisteUtlevering", any(e.dispenses for e in lib.entries), v.dispenses),
            ("Seponering", any(e.stop is not None for e in lib.entries), v.stop),
            ("Sporsmal", any(e.questions for e in lib.entries), v.questions),
        )
        if present and not allowed
    ]
    if unsupported:
        raise KithError(AppRecError.NOT_VALID, f"{variant} has no {', '.join(unsupported)}")
    return v


def _put_role(parent: etree._Element, ns: str, role: ListRole) -> None:
    el = x.sub(parent, ns, "Rolle")
    x.put_coded(el, ns, "Rolle", role.role, cv=False)
    if role.person is not None:
        p = x.sub(el, ns, "Helseperson")
        put_fk1_ident(p, ns, "HprId", role.person.hpr)
        x.opt_text(p, ns, "Fornavn", role.person.given)
        x.opt_text(p, ns, "Etternavn", role.person.family)
        x.put_coded(p, ns, "Spesialitet", role.person.speciality)
    elif role.organisation is not None:
        o = x.sub(el, ns, "Organisasjon")
        put_fk1_ident(o, ns, "HerId", role.organisation.her_id)
        x.opt_text(o, ns, "Inst", role.organisation.name)
        x.opt_text(o, ns, "Dept", role.organisation.department)
        x.put_coded(o, ns, "InstitusjonsID", role.organisation.institution)
    else:
        raise KithError(AppRecError.NOT_VALID, "a <Rolle> names a Helseperson or an Organisasjon")


def medicine_bytes(medicine: PrescribedMedicine) -> bytes:
    holder = etree.Element("holder")
    put_prescribed_medicine(holder, medicine)
    return to_bytes(holder[0])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _put_entry(parent: etree._Element, ns: str, e: ListEntry) -> None:
    el = x.sub(parent, ns, "EnkeltoppforingLIB")
    x.sub(el, ns, "Id", e.id)
    x.put_coded(el, ns, "Type", e.type, cv=False)
    x.opt_text(el, ns, "ReseptId", e.prescription_id)
    x.put_date(el, ns, "UtlopsdatoResept", e.prescription_expires)
    x.put_date(el, ns, "SistEndret", e.changed)
    x.put_date(el, ns, "DatoOppstart", e.started)
    x.put_coded(el, ns, "InngarMultidose", e.multidose, cv=False)
    x.put_bool(el, ns, "MedEndring", e.with_change)
    for role in e.roles:
        _put_role(el, ns, role)
    x.sub(el, ns, "ReseptDokLegemiddelB64", _b64(medicine_bytes(e.medicine)))
    for d in e.dispenses:
        u = x.sub(el, ns, "SisteUtlevering")
        x.opt_text(u, ns, "RefM10", d.ref_m10)
        x.put_coded(u, ns, "Ompakkingsgrunn", d.repack_reason, cv=False)
        x.put_date(u, ns, "DatoForsteDose", d.first_dose)
        x.put_date(u, ns, "DatoSisteDose", d.last_dose)
        if d.picture is not None:
            x.sub(u, ns, "Bilderef").set("V", d.picture)
        x.sub(u, ns, "UtleveringB64", _b64(d.dispense))
    if e.stop is not None:
        s = x.sub(el, ns, "Seponering")
        x.put_date(s, ns, "Tidspunkt", e.stop.at)
        x.put_coded(s, ns, "Arsak", e.stop.reason, cv=False)
        x.opt_text(s, ns, "Merknad", e.stop.note)
    for q in e.questions:
        s = x.sub(el, ns, "Sporsmal")
        x.put_coded(s, ns, "Kode", q.code)
        x.opt_text(s, ns, "Merknad", q.note)
        x.put_date(s, ns, "Tidspunkt", q.asked_at)
        x.sub(s, ns, "Stiller", q.asked_by)
        x.opt_text(s, ns, "Mottaker", q.to)
        if q.answer is not None:
            a = x.sub(s, ns, "Svar")
            x.put_coded(a, ns, "Kode", q.answer)
            x.opt_text(a, ns, "Merknad", q.answer_note)


def build_m25(lib: MedicationList) -> etree._Element:
    """The LegemidlerIBruk document of `lib.variant` (T02 when the content needs another variant)."""
    ns = _check(lib.variant, lib).ns
    root = etree.Element(x.q(ns, "LegemidlerIBruk"), nsmap={None: ns, "ki": NS_KI})
    for role in lib.roles:
        _put_role(root, ns, role)
    for e in lib.entries:
        _put_entry(root, ns, e)
    if lib.packing is not None:
        p = x.sub(root, ns, "Pakkeinfo")
        x.put_date(p, ns, "Bestillingsfrist", lib.packing.order_deadline)
        x.put_date(p, ns, "ForsteDoseringsdato", lib.packing.first_dose)
        x.put_date(p, ns, "SisteDoseringsdato", lib.packing.last_dose)
    for allergy in lib.allergies:
        put_allergy(root, allergy)
    x.opt_text(root, ns, "Merknad", lib.note)
    x.put_coded(root, ns, "Vikar", lib.substitute, cv=False)
    return root
