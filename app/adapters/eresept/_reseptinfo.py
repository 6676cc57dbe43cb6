"""m92:Reseptinfo (a prescription in RF as a summary) and the m274 multidose parties: read and write.

Shared by M92 Reseptliste (utleverer) and M912 Nedlasting av PLL, which both import them from
ER-M92-2013-10-08.xsd and ER-M274-2012-06-11.xsd. Element order as in those XSDs.
"""

from __future__ import annotations

from lxml import etree

from app.adapters.eresept._forskrivning import to_decimal, to_int
from app.adapters.eresept.messages import NS_FK1, required_date, xs_date
from app.adapters.eresept.model import (
    MultidoseDoctor,
    MultidosePharmacy,
    MultidoseUser,
    PrescriptionInfo,
)
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Address, Coded, Ident, Telecom

NS_M92 = "http://www.kith.no/xmlstds/eresept/m92/2013-10-08"
NS_M274 = "http://www.kith.no/xmlstds/eresept/m274/2012-06-11"


def _bool(el: etree._Element, ns: str, tag: str) -> bool:
    value = x.to_bool(x.required_text(el, ns, tag), tag)
    return bool(value)


# --- fk1 pieces under other element names ---------------------------------------------------------------


def fk1_ident(el: etree._Element, ns: str, tag: str) -> Ident:
    return x.parse_ident(x.require(el, ns, tag), NS_FK1)


def put_fk1_ident(parent: etree._Element, ns: str, tag: str, ident: Ident) -> None:
    el = x.sub(parent, ns, tag)
    x.sub(el, NS_FK1, "Id", ident.id)
    x.put_coded(el, NS_FK1, "TypeId", ident.type)


def _fk1_telecom(el: etree._Element, ns: str, tag: str) -> Telecom | None:
    found = x.child(el, ns, tag)
    if found is None:
        return None
    address = x.require(found, NS_FK1, "TeleAddress").get("V")
    if not address:
        raise KithError(AppRecError.NOT_VALID, f"<{tag}> has no address")
    return Telecom(address=address, type=x.coded(found, NS_FK1, "TypeTelecom"))


def _put_fk1_telecom(parent: etree._Element, ns: str, tag: str, telecom: Telecom | None) -> None:
    if telecom is None:
        return
    el = x.sub(parent, ns, tag)
    x.put_coded(el, NS_FK1, "TypeTelecom", telecom.type, cv=False)
    x.sub(el, NS_FK1, "TeleAddress").set("V", telecom.address)


def _put_fk1_address(parent: etree._Element, ns: str, tag: str, address: Address | None) -> None:
    """fk1:Address under the name `tag` (x.put_address always names it Address)."""
    holder = etree.Element("holder")
    x.put_address(holder, ns, address, NS_FK1)
    for el in holder:
        el.tag = x.q(ns, tag)
        parent.append(el)


# --- m274 ---------------------------------------------------------------------------------------------------


def parse_doctor(el: etree._Element | None) -> MultidoseDoctor | None:
    found = x.child(el, NS_M274, "Multidoselege")
    if found is None:
        return None
    return MultidoseDoctor(
        hpr=x.required_text(found, NS_M274, "HprNr"),
        name=x.required_text(found, NS_M274, "Navn"),
        organisation=x.required_text(found, NS_M274, "Org"),
        her_id=fk1_ident(found, NS_M274, "HerId"),
        active_until=xs_date(x.text(found, NS_M274, "AktivTil"), "AktivTil"),
        telecom=_fk1_telecom(found, NS_M274, "Telefon"),
    )


def parse_pharmacy(el: etree._Element | None) -> MultidosePharmacy | None:
    found = x.child(el, NS_M274, "Multidoseapotek")
    if found is None:
        return None
    return MultidosePharmacy(
        name=x.required_text(found, NS_M274, "Navn"),
        address=x.parse_address(x.child(found, NS_M274, "Adresse"), NS_FK1),
        licence=fk1_ident(found, NS_M274, "Konsesjonsnr"),
        active_until=xs_date(x.text(found, NS_M274, "AktivTil"), "AktivTil"),
        telecom=_fk1_telecom(found, NS_M274, "Telefon"),
    )


def put_doctor(parent: etree._Element, doctor: MultidoseDoctor | None) -> None:
    if doctor is None:
        return
    el = etree.SubElement(parent, x.q(NS_M274, "Multidoselege"), nsmap={"m274": NS_M274, "fk1": NS_FK1})
    x.sub(el, NS_M274, "HprNr", doctor.hpr)
    x.sub(el, NS_M274, "Navn", doctor.name)
    x.sub(el, NS_M274, "Org", doctor.organisation)
    put_fk1_ident(el, NS_M274, "HerId", doctor.her_id)
    x.put_date(el, NS_M274, "AktivTil", doctor.active_until)
    _put_fk1_telecom(el, NS_M274, "Telefon", doctor.telecom)


def put_pharmacy(parent: etree._Element, pharmacy: MultidosePharmacy | None) -> None:
    if pharmacy is None:
        return
    el = etree.SubElement(parent, x.q(NS_M274, "Multidoseapotek"), nsmap={"m274": NS_M274, "fk1": NS_FK1})
    x.sub(el, NS_M274, "Navn", pharmacy.name)
    _put_fk1_address(el, NS_M274, "Adresse", pharmacy.address)
    put_fk1_ident(el, NS_M274, "Konsesjonsnr", pharmacy.licence)
    x.put_date(el, NS_M274, "AktivTil", pharmacy.active_until)
    _put_fk1_telecom(el, NS_M274, "Telefon", pharmacy.telecom)


def parse_user(el: etree._Element, ns: str) -> MultidoseUser:
    """M92 Multidosebruker / M912 Multidosepasient (Fnr in `ns`, the parties in m274)."""
    return MultidoseUser(
        fnr=x.required_text(el, ns, "Fnr"), doctor=parse_doctor(el), pharmacy=parse_pharmacy(el)
    )


# --- m92:Reseptinfo -----------------------------------------------------------------------------------------


def parse_info(el: etree._Element) -> PrescriptionInfo:
    ns = NS_M92
    size = x.text(el, ns, "Pakningsstr")
    unit = x.coded(el, ns, "EnhetPakning")
    patient = x.child(el, ns, "Ident")
    return PrescriptionInfo(
        prescription_id=x.required_text(el, ns, "ReseptId"),
        issued=required_date(el, ns, "Forskrivningsdato"),
        given_name=x.required_text(el, ns, "Fornavn"),
        family_name=x.required_text(el, ns, "Etternavn"),
        prescriber_id=x.required_text(el, ns, "RekvirentId"),
        prescriber_name=x.required_text(el, ns, "NavnRekvirent"),
        changed_by_pharmacist=x.coded(x.require(el, ns, "EndretFarmasoyt")) or Coded(),
        status=x.coded(x.require(el, ns, "Status")) or Coded(),
        guardian_reservation=_bool(el, ns, "Vergeinnsynsreservasjon"),
        middle_name=x.text(el, ns, "Mellomnavn"),
        address=x.parse_address(x.child(el, ns, "Address"), NS_FK1),
        item_number=x.ident_text(el, ns, "Nr"),
        name_form_strength=x.text(el, ns, "NavnFormStyrke"),
        reimbursement_basis=x.coded(el, ns, "RefHjemmel"),
        recall_note=x.text(el, ns, "MerknadTilbakekalling"),
        dispenser_name=x.text(el, ns, "NavnUtleverer"),
        reference=x.text(el, ns, "RefNr"),
        product_group=x.coded(el, ns, "ProdGruppe"),
        patient=None if patient is None else x.parse_ident(patient, NS_FK1),
        application_status=x.coded(el, ns, "StatusSoknadSlv"),
        mixture_name=x.text(el, ns, "LegemiddelblandingNavn"),
        dispense_method=x.coded(el, ns, "MetodeEkspedering"),
        last_dispensed=xs_date(x.text(el, ns, "SisteUtlevering"), "SisteUtlevering"),
        use_area=x.text(el, ns, "Bruksomrade"),
        quantity=to_decimal(x.text(el, ns, "Antall"), "Antall"),
        package=None if size is None or unit is None else (size, unit),
        amount=x.quantity(x.child(el, ns, "Mengde")),
        reiterations=to_int(x.text(el, ns, "Reiterasjon"), "Reiterasjon"),
        earliest_dispense=xs_date(x.text(el, ns, "TidligsteUtlevering"), "TidligsteUtlevering"),
    )


def put_info(parent: etree._Element, info: PrescriptionInfo) -> None:
    ns = NS_M92
    el = etree.SubElement(parent, x.q(ns, "Reseptinfo"), nsmap={"m92": ns, "fk1": NS_FK1})
    x.put_date(el, ns, "Forskrivningsdato", info.issued)
    x.sub(el, ns, "Fornavn", info.given_name)
    x.opt_text(el, ns, "Mellomnavn", info.middle_name)
    x.sub(el, ns, "Etternavn", info.family_name)
    x.put_address(el, ns, info.address, NS_FK1)
    x.sub(el, ns, "RekvirentId", info.prescriber_id)
    x.sub(el, ns, "NavnRekvirent", info.prescriber_name)
    x.opt_text(el, ns, "Nr", info.item_number)
    x.opt_text(el, ns, "NavnFormStyrke", info.name_form_strength)
    x.put_coded(el, ns, "EndretFarmasoyt", info.changed_by_pharmacist, cv=False)
    x.put_coded(el, ns, "RefHjemmel", info.reimbursement_basis)
    x.sub(el, ns, "ReseptId", info.prescription_id)
    x.put_coded(el, ns, "Status", info.status, cv=False)
    x.opt_text(el, ns, "MerknadTilbakekalling", info.recall_note)
    x.opt_text(el, ns, "NavnUtleverer", info.dispenser_name)
    x.opt_text(el, ns, "RefNr", info.reference)
    x.put_coded(el, ns, "ProdGruppe", info.product_group)
    if info.patient is not None:
        put_fk1_ident(el, ns, "Ident", info.patient)
    x.put_coded(el, ns, "StatusSoknadSlv", info.application_status, cv=False)
    x.opt_text(el, ns, "LegemiddelblandingNavn", info.mixture_name)
    x.put_coded(el, ns, "MetodeEkspedering", info.dispense_method, cv=False)
    x.put_bool(el, ns, "Vergeinnsynsreservasjon", info.guardian_reservation)
    x.put_date(el, ns, "SisteUtlevering", info.last_dispensed)
    x.opt_text(el, ns, "Bruksomrade", info.use_area)
    x.opt_text(el, ns, "Antall", None if info.quantity is None else str(info.quantity))
    if info.package is not None:
        x.sub(el, ns, "Pakningsstr", info.package[0])
        x.put_coded(el, ns, "EnhetPakning", info.package[1])
    x.put_quantity(el, ns, "Mengde", info.amount)
    x.opt_text(el, ns, "Reiterasjon", None if info.reiterations is None else str(info.reiterations))
    x.put_date(el, ns, "TidligsteUtlevering", info.earliest_dispense)
