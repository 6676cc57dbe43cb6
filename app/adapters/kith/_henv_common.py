"""Parts that Henvisning 1.x and 2.0 share, parametrised by namespace and by the version's data types.

1.x writes dates as KITH TS (`<X V="..."/>`) and headings as CS; 2.0 writes dates as element text and
headings/InfItem types as CV. `v2` switches between the two.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    PATIENT_ID_TYPES,
    Address,
    ClinicalItem,
    Coded,
    Diagnosis,
    HumanName,
    Ident,
    LabResult,
    Medication,
    MessageKind,
    Organisation,
    Patient,
    Precaution,
    Quantity,
    RelatedPerson,
    ResultKind,
    Telecom,
    TextSection,
)
from app.resources.no_basis.personal import (
    D_NUMMER,
    FODSELSNUMMER,
    H_NUMMER,
    NOT_11_DIGITS,
    WRONG_CHECK_DIGIT,
    fh_number_problem,
    personal_number_problem,
)

NS_FK1 = "http://www.kith.no/xmlstds/felleskomponent1"
KIND_DISPLAY = {MessageKind.NEW: "Ny", MessageKind.CHANGE: "Endring", MessageKind.CANCEL: "Kansellering"}


_PERSONAL_NUMBERS = {"FNR": FODSELSNUMMER, "DNR": D_NUMMER, "HNR": H_NUMMER}
_PROBLEMS = {  # personal.py's phrases -> the fault named in the receipt
    NOT_11_DIGITS: "not 11 digits",
    WRONG_CHECK_DIGIT: "check digit",
}


def _number_problem(ident: Ident) -> str | None:
    """'fødselsnummer is invalid (check digit)' and the like, for a personal number the no-basis checks
    refuse (which would otherwise fail the store with a generic error)."""
    code = ident.type.code or ""
    if code in _PERSONAL_NUMBERS:
        kind = _PERSONAL_NUMBERS[code]
        problem = personal_number_problem(ident.id.strip(), kind)
        label = kind.label
    elif code == "FHN":
        problem, label = fh_number_problem(ident.id.strip()), "felles hjelpenummer"
    else:
        return None
    return None if problem is None else f"{label} is invalid ({_PROBLEMS.get(problem, 'date or marks')})"


def check_patient(patient: Patient) -> Patient:
    """The minimum a receiver needs to identify the patient; codes per Volven 8221."""
    if not patient.idents:
        raise KithError(AppRecError.PATIENT_FNR_MISSING, "patient identifier is missing")
    for ident in patient.idents:
        if ident.type.code not in PATIENT_ID_TYPES:
            raise KithError(AppRecError.PATIENT_INFO_INSUFFICIENT, "patient identifier has an unknown type")
        if not ident.id:
            raise KithError(AppRecError.PATIENT_FNR_MISSING, "patient identifier is empty")
        problem = _number_problem(ident)
        if problem is not None:  # the phrase names the kind of fault, never the number
            raise KithError(AppRecError.PATIENT_FNR_WRONG, f"patient {problem}")
    name = patient.name
    if not (name.family or name.given or name.text):
        raise KithError(AppRecError.PATIENT_NAME_MISSING, "patient name is missing")
    return patient


def parse_kind(el: etree._Element, ns: str) -> MessageKind:
    serv_type = x.coded(x.require(el, ns, "ServType"))
    try:
        return MessageKind((serv_type.code if serv_type else None) or "")
    except ValueError:
        raise KithError(AppRecError.NOT_VALID, "unknown ServType (expected N, M or C)") from None


def kind_coded(kind: MessageKind) -> Coded:
    return Coded(code=kind.value, display=KIND_DISPLAY[kind])


def _dt(el: etree._Element, ns: str, tag: str, v2: bool) -> datetime | None:
    """A date/time element: element text in 2.0, a TS (`V` attribute) in 1.x."""
    return x.to_datetime(x.text(el, ns, tag), tag) if v2 else x.ts_attr(el, ns, tag)


def _put_dt(el: etree._Element, ns: str, tag: str, value: datetime | None, v2: bool) -> None:
    if v2:
        x.put_date(el, ns, tag, value)
    else:
        x.put_ts_attr(el, ns, tag, value)


def parse_precautions(parent: etree._Element, ns: str, v2: bool) -> tuple[Precaution, ...]:
    return tuple(
        Precaution(
            text=x.text(p, ns, "Precaution") or "",
            start=_dt(p, ns, "StartDateTime", v2),
            end=_dt(p, ns, "EndDateTime", v2),
        )
        for p in x.children(parent, ns, "PatientPrecaution")
    )


def put_precautions(parent: etree._Element, ns: str, precautions: tuple[Precaution, ...], v2: bool) -> None:
    for precaution in precautions:
        el = x.sub(parent, ns, "PatientPrecaution")
        x.sub(el, ns, "Precaution", precaution.text)
        _put_dt(el, ns, "StartDateTime", precaution.start, v2)
        _put_dt(el, ns, "EndDateTime", precaution.end, v2)


def unmapped(el: etree._Element, table: dict[str, frozenset[str]], path: str = "") -> list[str]:
    """Paths (names only) of the children, at any depth, that `table` (element -> mapped children) does not
    list; elements not in the table are not looked into."""
    mapped = table.get(x.local(el))
    if mapped is None:
        return []
    found: list[str] = []
    for kid in el:
        if isinstance(kid.tag, str):
            kid_path = f"{path}/{x.local(kid)}" if path else x.local(kid)
            if x.local(kid) in mapped:
                found += unmapped(kid, table, kid_path)
            elif kid_path not in found:
                found.append(kid_path)
    return found


def parse_result(el: etree._Element, ns: str, v2: bool) -> LabResult:
    """InfItem/ResultItem (the same in 1.0, 1.1 and 2.0, but for the date types)."""
    inv = x.require(el, ns, "ClinInv")
    kind = next((k for k in ResultKind if x.child(el, ns, k.value) is not None), None)
    if kind is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <ResultItem> has no result")
    value = x.child(el, ns, kind.value)
    out = LabResult(
        investigation=x.coded(x.require(inv, ns, "Id")) or Coded(),
        kind=kind,
        specs=tuple(c for c in (x.coded(s) for s in x.children(inv, ns, "Spec")) if c is not None),
        service_type=x.coded(el, ns, "ServType"),
        investigation_date=_dt(el, ns, "InvDate", v2),
        comment=x.text(el, ns, "Comment"),
        deviation=x.coded(el, ns, "DevResultInd"),
    )
    if kind is ResultKind.NUMERIC:
        num = x.quantity(x.require(value, ns, "NumResultValue"))
        return replace(out, value=num, comparator=x.coded(value, ns, "ArithmeticComp"))
    if kind is ResultKind.INTERVAL:
        return replace(
            out, low=x.quantity(x.child(value, ns, "Low")), high=x.quantity(x.child(value, ns, "High"))
        )
    if kind is ResultKind.DATE:
        return replace(out, date_value=_dt(value, ns, "DateResultValue", v2))
    result = x.child(value, ns, "Result")
    if result is None:
        return out
    codes = tuple(c for c in (x.coded(e) for e in x.children(result, ns, "TextCode")) if c is not None)
    text = TextSection(x.coded(result, ns, "Heading"), x.text(result, ns, "TextResultValue"), codes)
    return replace(out, text=text)


def put_result(parent: etree._Element, ns: str, r: LabResult, v2: bool) -> None:
    el = x.sub(parent, ns, "ResultItem")
    value = x.sub(el, ns, r.kind.value)
    if r.kind is ResultKind.NUMERIC:
        x.put_coded(value, ns, "ArithmeticComp", r.comparator, cv=False)
        x.put_quantity(value, ns, "NumResultValue", r.value or Quantity())
    elif r.kind is ResultKind.INTERVAL:
        x.put_quantity(value, ns, "Low", r.low)
        x.put_quantity(value, ns, "High", r.high)
    elif r.kind is ResultKind.DATE and r.date_value is not None:
        day = r.date_value.date() if v2 else r.date_value  # 2.0: xs:date
        if v2:
            x.put_date(value, ns, "DateResultValue", day)
        else:
            x.put_ts_attr(value, ns, "DateResultValue", day)
    elif r.kind is ResultKind.TEXT and r.text is not None:
        result = x.sub(value, ns, "Result")
        x.put_coded(result, ns, "Heading", r.text.heading, cv=False)
        x.opt_text(result, ns, "TextResultValue", r.text.text)
        for code in r.text.codes[:1]:  # TextCode is 0..1
            x.put_coded(result, ns, "TextCode", code)
    x.put_coded(el, ns, "ServType", r.service_type, cv=False)
    _put_dt(el, ns, "InvDate", r.investigation_date, v2)
    x.opt_text(el, ns, "Comment", r.comment)
    x.put_coded(el, ns, "DevResultInd", r.deviation, cv=False)
    inv = x.sub(el, ns, "ClinInv")
    x.put_coded(inv, ns, "Id", r.investigation)
    for spec in r.specs:
        x.put_coded(inv, ns, "Spec", spec)


def parse_items(parent: etree._Element, ns: str, v2: bool) -> tuple[ClinicalItem, ...]:
    items = []
    for item in x.children(parent, ns, "InfItem"):
        result_el = x.child(item, ns, "ResultItem")
        obs = x.child(item, ns, "Observation")
        med = x.child(item, ns, "Medication")
        medication = None
        if med is not None:
            medication = Medication(
                drug=x.coded(med, ns, "DrugId") or Coded(),
                status=x.coded(med, ns, "Status"),
                unit_dose=x.quantity(x.child(med, ns, "UnitDose")),
                dosage_text=x.text(med, ns, "DosageText"),
                comment=x.text(med, ns, "Comment"),
            )
        if v2:
            start = x.to_datetime(x.text(item, ns, "StartDateTime"), "StartDateTime")
            end = x.to_datetime(x.text(item, ns, "EndDateTime"), "EndDateTime")
        else:
            start, end = x.ts_attr(item, ns, "StartDateTime"), x.ts_attr(item, ns, "EndDateTime")
        items.append(
            ClinicalItem(
                type=x.coded(x.require(item, ns, "Type")) or Coded(),
                description=x.text(obs, ns, "Description"),
                comment=x.text(obs, ns, "Comment"),
                medication=medication,
                start=start,
                end=end,
                result=None if result_el is None else parse_result(result_el, ns, v2),
            )
        )
    return tuple(items)


def put_items(parent: etree._Element, ns: str, items: tuple[ClinicalItem, ...], v2: bool) -> None:
    for item in items:
        el = x.sub(parent, ns, "InfItem")
        if item.result is not None:
            put_result(el, ns, item.result, v2)
        elif item.medication is not None:
            m = item.medication
            med = x.sub(el, ns, "Medication")
            x.put_coded(med, ns, "DrugId", m.drug)
            x.opt_text(med, ns, "Comment", m.comment)
            x.put_coded(med, ns, "Status", m.status or Coded(), cv=False)
            x.put_quantity(med, ns, "UnitDose", m.unit_dose)
            x.opt_text(med, ns, "DosageText", m.dosage_text)
        else:
            obs = x.sub(el, ns, "Observation")
            x.opt_text(obs, ns, "Description", item.description)
            x.opt_text(obs, ns, "Comment", item.comment)
        x.put_coded(el, ns, "Type", item.type, cv=v2)
        if v2:
            x.put_date(el, ns, "StartDateTime", item.start)
            x.put_date(el, ns, "EndDateTime", item.end)
        else:
            x.put_ts_attr(el, ns, "StartDateTime", item.start)
            x.put_ts_attr(el, ns, "EndDateTime", item.end)


def parse_sections(parent: etree._Element, ns: str, tag: str) -> tuple[TextSection, ...]:
    """ReasonAsText (codes in TextCode) or Comment (codes in CodedComment)."""
    code_tag = "TextCode" if tag == "ReasonAsText" else "CodedComment"
    return tuple(
        TextSection(
            heading=_given(x.coded(el, ns, "Heading")),
            text=x.text(el, ns, "TextResultValue"),
            codes=tuple(
                c for c in (_given(x.coded(e)) for e in x.children(el, ns, code_tag)) if c is not None
            ),
        )
        for el in x.children(parent, ns, tag)
    )


def _given(value: Coded | None) -> Coded | None:
    """A coded element without any attribute (`<CodedComment/>`) says nothing: read as absent."""
    return None if value is None or value == Coded() else value


def put_sections(
    parent: etree._Element, ns: str, tag: str, sections: tuple[TextSection, ...], v2: bool
) -> None:
    code_tag = "TextCode" if tag == "ReasonAsText" else "CodedComment"
    # Henvisning 1.1 makes a Comment's Heading, TextResultValue and CodedComment (1..n) mandatory, 2.0 none
    # of them: what the referral lacks is written as an empty element (no code invented), read back as absent.
    required = tag == "Comment" and not v2
    for section in sections:
        el = x.sub(parent, ns, tag)
        x.put_coded(el, ns, "Heading", section.heading or (Coded() if required else None), cv=v2)
        x.opt_text(
            el, ns, "TextResultValue", section.text if section.text is not None or not required else ""
        )
        for code in section.codes or ((Coded(),) if required else ()):
            x.put_coded(el, ns, code_tag, code)


def parse_diagnoses(parent: etree._Element, ns: str) -> tuple[Diagnosis, ...]:
    return tuple(
        Diagnosis(concept=x.coded(d, ns, "Concept") or Coded()) for d in x.children(parent, ns, "Diagnosis")
    )


def put_diagnoses(parent: etree._Element, ns: str, diagnoses: tuple[Diagnosis, ...]) -> None:
    for diagnosis in diagnoses:
        x.put_coded(x.sub(parent, ns, "Diagnosis"), ns, "Concept", diagnosis.concept)


class PersonDetails(Protocol):
    """What an fk1:Person carries besides the name (RelatedPerson, ContactPerson)."""

    @property
    def idents(self) -> tuple[Ident, ...]: ...
    @property
    def address(self) -> Address | None: ...
    @property
    def telecoms(self) -> tuple[Telecom, ...]: ...


def parse_fk1_person(
    el: etree._Element,
) -> tuple[HumanName, tuple[Ident, ...], Address | None, tuple[Telecom, ...]]:
    """An fk1:Person's name, identifiers, address and telecoms."""
    return (
        x.parse_name(el, NS_FK1),
        tuple(x.parse_ident(i, NS_FK1) for i in x.children(el, NS_FK1, "Ident")),
        x.parse_address(x.child(el, NS_FK1, "Address"), NS_FK1),
        x.parse_telecoms(el, NS_FK1),
    )


def parse_related_persons(parent: etree._Element, po: str) -> tuple[RelatedPerson, ...]:
    out = []
    for el in x.children(parent, po, "ParorendeForesatt"):
        name, idents, address, telecoms = parse_fk1_person(x.require(el, po, "Referanseperson"))
        out.append(
            RelatedPerson(
                name=name,
                relationship=x.coded(el, po, "Slektskap"),
                care_function=x.coded(el, po, "Omsorgsfunksjon"),
                next_of_kin=x.to_bool(x.text(el, po, "NarmesteParorende"), "NarmesteParorende"),
                minor_birth_year=x.to_int(
                    x.text(el, po, "FodselsarMindrearigParorende"), "FodselsarMindrearigParorende"
                ),
                idents=idents,
                address=address,
                telecoms=telecoms,
                note=x.text(el, po, "Merknad"),
            )
        )
    return tuple(out)


def put_fk1_person(el: etree._Element, name: HumanName, details: PersonDetails | None = None) -> None:
    """Fill an element of type fk1:Person (children in the fk1 namespace)."""
    x.put_name(el, NS_FK1, name)
    if details is not None:
        for ident in details.idents:
            x.put_ident(el, NS_FK1, ident)
        x.put_address(el, NS_FK1, details.address)
        x.put_telecoms(el, NS_FK1, details.telecoms)


def put_fk1_organisation(el: etree._Element, org: Organisation) -> None:
    """Fill an element of type fk1:Organisation (whose order differs from MsgHead's: type before name)."""
    x.put_coded(el, NS_FK1, "TypeOrganisation", org.type)
    x.sub(el, NS_FK1, "OrganisationName", org.name or "")
    for ident in org.idents:
        x.put_ident(el, NS_FK1, ident)
    x.put_address(el, NS_FK1, org.address)
    x.put_telecoms(el, NS_FK1, org.telecoms)
    if org.sub_organisation is not None:
        put_fk1_organisation(x.sub(el, NS_FK1, "Organisation"), org.sub_organisation)


def put_related_persons(
    parent: etree._Element, po: str, persons: tuple[RelatedPerson, ...], v2: bool, *, birth_year: bool = False
) -> None:
    """`birth_year`: a 1.x poKomponent that has FodselsarMindrearigParorende (PLO 1.6); 2.0 always has it."""
    for rp in persons:
        el = x.sub(parent, po, "ParorendeForesatt")
        x.put_coded(el, po, "Slektskap", rp.relationship, cv=False)
        x.put_coded(el, po, "Omsorgsfunksjon", rp.care_function, cv=False)
        if v2 or birth_year:
            year = None if rp.minor_birth_year is None else f"{rp.minor_birth_year:04d}"
            x.opt_text(el, po, "FodselsarMindrearigParorende", year)
        if v2:
            x.put_bool(el, po, "NarmesteParorende", rp.next_of_kin)
        put_fk1_person(x.sub(el, po, "Referanseperson"), rp.name, rp)
        x.opt_text(el, po, "Merknad", rp.note)
