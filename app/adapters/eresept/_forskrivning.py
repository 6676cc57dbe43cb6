"""m1:ReseptDokLegemiddel with its fs:Forskrivning (2013-10-08): read and write.

Shared by M1 (the prescription) and M10 (the dispense report, which repeats ReseptDokLegemiddel as
dispensed). Only the product kinds in `ProductKind` are modelled; a magistrell (Legemiddelblanding) or
Legemiddeldose prescription is refused with T02 rather than silently mapped to something else.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal, InvalidOperation

from lxml import etree

from app.adapters.eresept._compound import NS_FS, parse_compound, put_compound, required_quantity
from app.adapters.eresept.model import (
    AsNeeded,
    Dosage,
    Dose,
    Medicine,
    Package,
    PrescribedMedicine,
    Prescribing,
    ProductKind,
)
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded

NS_M1 = "http://www.kith.no/xmlstds/eresept/m1/2013-10-08"
_UNSUPPORTED_KINDS = ("Legemiddeldose",)


def to_decimal(value: str | None, tag: str) -> Decimal | None:
    if value is None or not value.strip():
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        raise KithError(AppRecError.NOT_VALID, f"invalid number in <{tag}>") from None


def to_int(value: str | None, tag: str) -> int | None:
    number = to_decimal(value, tag)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise KithError(AppRecError.NOT_VALID, f"invalid integer in <{tag}>")
    return int(number)


def _date_attr(el: etree._Element | None, tag: str) -> date | None:
    found = x.child(el, NS_FS, tag)
    return None if found is None else x.to_date(found.get("V"), tag)


def _parse_dose(el: etree._Element) -> Dose:
    clock = x.ident_text(el, NS_FS, "Klokkeslett")
    try:
        clock_time = None if not clock else time.fromisoformat(clock)
    except ValueError:
        raise KithError(AppRecError.NOT_VALID, "invalid time in <Klokkeslett>") from None
    return Dose(
        amount=required_quantity(el, "Mengde"),
        interval=x.quantity(x.child(el, NS_FS, "Intervall")),
        clock_time=clock_time,
        time_of_day=x.coded(el, NS_FS, "Tidsomrade"),
        exact=bool(x.to_bool(x.text(el, NS_FS, "GisEksakt"), "GisEksakt")),
    )


def _parse_as_needed(el: etree._Element) -> Dose:
    limits = AsNeeded(
        max_per_day=required_quantity(el, "DoseDognMaks"),
        max_per_period=required_quantity(el, "DoseTidsromMaks"),
        period=required_quantity(el, "Tidsrom"),
        min_interval=required_quantity(el, "DoseIntervallMin"),
    )
    return Dose(
        amount=required_quantity(el, "Mengde"),
        interval=x.quantity(x.child(el, NS_FS, "Intervall")),
        as_needed=limits,
    )


def _parse_dosage(el: etree._Element) -> Dosage:
    if x.child(el, NS_FS, "Doseringsregel") is not None:
        # Dosing rules (dosed by weight, by a measured value ...) are not modelled yet: refuse, don't drop.
        raise KithError(AppRecError.NOT_VALID, "<Doseringsregel> is not supported yet")
    for tag in ("DoseFastTidspunkt", "DoseEtterBehov"):
        for dose in x.children(el, NS_FS, tag):
            if x.child(dose, NS_FS, "Infusjonshastighet") is not None:
                raise KithError(AppRecError.NOT_VALID, "<Infusjonshastighet> is not supported yet")
    return Dosage(
        doses=tuple(_parse_dose(d) for d in x.children(el, NS_FS, "DoseFastTidspunkt"))
        + tuple(_parse_as_needed(d) for d in x.children(el, NS_FS, "DoseEtterBehov")),
        start=_date_attr(el, "Starttidspunkt"),
        end=_date_attr(el, "Sluttidspunkt"),
    )


def _parse_medicine(forskrivning: etree._Element) -> Medicine:
    """The product a Forskrivning (or a BestanddelLegemiddel) names: a catalogue product or a mixture."""
    for kind in _UNSUPPORTED_KINDS:
        if x.child(forskrivning, NS_FS, kind) is not None:
            raise KithError(AppRecError.NOT_VALID, f"<{kind}> prescriptions are not supported yet")
    blend = x.child(forskrivning, NS_FS, ProductKind.COMPOUND)
    if blend is not None:
        compound = parse_compound(blend, _parse_medicine)
        return Medicine(ProductKind.COMPOUND, compound.name, Coded(), form=compound.form, compound=compound)
    el = next(
        (
            x.child(forskrivning, NS_FS, k)
            for k in ProductKind.ALL
            if x.child(forskrivning, NS_FS, k) is not None
        ),
        None,
    )
    if el is None:
        raise KithError(AppRecError.NOT_VALID, "<Forskrivning> names no medicine")
    return Medicine(
        kind=x.local(el),
        name_form_strength=x.required_text(el, NS_FS, "NavnFormStyrke"),
        prescription_group=x.coded(x.require(el, NS_FS, "Reseptgruppe")) or Coded(),
        atc=x.coded(el, NS_FS, "Atc"),
        form=x.coded(el, NS_FS, "LegemiddelformKort"),
        fest_id=x.ident_text(el, NS_FS, "Id"),
        item_number=x.ident_text(el, NS_FS, "Varenr") or None,  # mandatory, written empty when unknown
        brand_name=x.text(el, NS_FS, "Varenavn") or None,
        packages=tuple(
            Package(
                name=x.text(p, NS_FS, "Varenavn") or "",
                size=x.required_text(p, NS_FS, "Pakningsstr"),
                unit=x.coded(x.require(p, NS_FS, "EnhetPakning")) or Coded(),
            )
            for p in x.children(el, NS_FS, "PakningsinfoResept")
        ),
    )


def parse_prescribing(el: etree._Element) -> Prescribing:
    """Read fs:Forskrivning."""
    return Prescribing(
        medicine=_parse_medicine(el),
        use_area=x.text(el, NS_FS, "Bruksomrade"),
        dosage_text=x.text(el, NS_FS, "DosVeiledEnkel"),
        no_combination=x.to_bool(x.text(el, NS_FS, "IngenKombinasjon"), "IngenKombinasjon"),
        use=x.coded(el, NS_FS, "Bruk"),
        short_dose=x.coded(el, NS_FS, "Kortdose"),
        dosages=tuple(_parse_dosage(d) for d in x.children(el, NS_FS, "Dosering")),
    )


def parse_prescribed_medicine(el: etree._Element) -> PrescribedMedicine:
    """Read m1:ReseptDokLegemiddel."""
    reiterations = to_int(x.text(el, NS_M1, "Reiterasjon"), "Reiterasjon")
    return PrescribedMedicine(
        article_group=x.coded(x.require(el, NS_M1, "Varegruppekode")) or Coded(),
        prescribing=parse_prescribing(x.require(el, NS_FS, "Forskrivning")),
        quantity=to_decimal(x.text(el, NS_M1, "Antall"), "Antall"),
        note=x.text(el, NS_M1, "Merknad"),
        reimbursement_basis=x.coded(el, NS_M1, "RefHjemmel"),
        reimbursement_code=x.coded(el, NS_M1, "RefKode"),
        reiterations=0 if reiterations is None else reiterations,
        substitution_reserved=x.coded(el, NS_M1, "BytteresRekvirent"),
    )


# --- writing (element order as in ER-M1-2013-10-08.xsd and Forskrivning-2013-10-08.xsd) -----------------


def _put_dosage(parent: etree._Element, dosage: Dosage) -> None:
    el = x.sub(parent, NS_FS, "Dosering")
    if dosage.start is not None:
        x.sub(el, NS_FS, "Starttidspunkt").set("V", dosage.start.isoformat())
    if dosage.end is not None:
        x.sub(el, NS_FS, "Sluttidspunkt").set("V", dosage.end.isoformat())
    as_needed = {dose.as_needed is not None for dose in dosage.doses}
    if len(as_needed) > 1:  # the XSD's choice: fixed doses or as-needed doses in one Dosering
        raise KithError(AppRecError.NOT_VALID, "a Dosering has fixed doses or as-needed doses, not both")
    for dose in dosage.doses:
        if dose.as_needed is not None:
            d = x.sub(el, NS_FS, "DoseEtterBehov")
            x.put_quantity(d, NS_FS, "Mengde", dose.amount)
            x.put_quantity(d, NS_FS, "Intervall", dose.interval)
            x.put_quantity(d, NS_FS, "DoseDognMaks", dose.as_needed.max_per_day)
            x.put_quantity(d, NS_FS, "DoseTidsromMaks", dose.as_needed.max_per_period)
            x.put_quantity(d, NS_FS, "Tidsrom", dose.as_needed.period)
            x.put_quantity(d, NS_FS, "DoseIntervallMin", dose.as_needed.min_interval)
            continue
        d = x.sub(el, NS_FS, "DoseFastTidspunkt")
        x.put_quantity(d, NS_FS, "Mengde", dose.amount)
        x.put_quantity(d, NS_FS, "Intervall", dose.interval)
        if dose.clock_time is not None:
            x.sub(d, NS_FS, "Klokkeslett", dose.clock_time.isoformat())
        x.put_coded(d, NS_FS, "Tidsomrade", dose.time_of_day, cv=False)
        x.put_bool(d, NS_FS, "GisEksakt", dose.exact)


def _put_medicine(parent: etree._Element, medicine: Medicine) -> None:
    if medicine.compound is not None:
        put_compound(parent, medicine.compound, _put_medicine)
        return
    el = x.sub(parent, NS_FS, medicine.kind)
    x.put_coded(el, NS_FS, "Atc", medicine.atc)
    x.sub(el, NS_FS, "NavnFormStyrke", medicine.name_form_strength)
    x.put_coded(el, NS_FS, "Reseptgruppe", medicine.prescription_group, cv=False)
    x.put_coded(el, NS_FS, "LegemiddelformKort", medicine.form)
    x.opt_text(el, NS_FS, "Id", medicine.fest_id)
    if medicine.kind == ProductKind.PACKAGE:
        x.sub(el, NS_FS, "Varenr", medicine.item_number or "")
        for package in medicine.packages:
            p = x.sub(el, NS_FS, "PakningsinfoResept")
            x.sub(p, NS_FS, "Varenavn", package.name)
            x.sub(p, NS_FS, "Pakningsstr", package.size)
            x.put_coded(p, NS_FS, "EnhetPakning", package.unit)
    elif medicine.kind == ProductKind.BRAND:
        x.sub(el, NS_FS, "Varenavn", medicine.brand_name or "")


def put_prescribing(parent: etree._Element, prescribing: Prescribing) -> None:
    el = etree.SubElement(parent, x.q(NS_FS, "Forskrivning"), nsmap={None: NS_FS})
    x.opt_text(el, NS_FS, "Bruksomrade", prescribing.use_area)
    x.opt_text(el, NS_FS, "DosVeiledEnkel", prescribing.dosage_text)
    x.put_bool(el, NS_FS, "IngenKombinasjon", prescribing.no_combination)
    x.put_coded(el, NS_FS, "Bruk", prescribing.use, cv=False)
    x.put_coded(el, NS_FS, "Kortdose", prescribing.short_dose)
    for dosage in prescribing.dosages:
        _put_dosage(el, dosage)
    _put_medicine(el, prescribing.medicine)


def put_prescribed_medicine(parent: etree._Element, medicine: PrescribedMedicine) -> None:
    el = etree.SubElement(parent, x.q(NS_M1, "ReseptDokLegemiddel"), nsmap={None: NS_M1})
    x.put_coded(el, NS_M1, "Varegruppekode", medicine.article_group, cv=False)
    if medicine.quantity is not None:
        x.sub(el, NS_M1, "Antall", str(medicine.quantity))
    x.opt_text(el, NS_M1, "Merknad", medicine.note)
    x.put_coded(el, NS_M1, "RefHjemmel", medicine.reimbursement_basis)
    x.put_coded(el, NS_M1, "RefKode", medicine.reimbursement_code)
    x.sub(el, NS_M1, "Reiterasjon", str(medicine.reiterations))
    x.put_coded(el, NS_M1, "BytteresRekvirent", medicine.substitution_reserved, cv=False)
    put_prescribing(el, medicine.prescribing)
