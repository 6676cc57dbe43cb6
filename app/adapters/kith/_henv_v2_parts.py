"""Henvisning 2.0 elements about the patient's surroundings and what was done before, both ways:
po:TilknyttetEnhet, po:SendtDokument, po:PasientrelatertKontaktperson, po:Legemiddelgjennomgang (poKomponent
v2.0) and Consent (in the Henvisning namespace). `ns` is the Henvisning namespace, `po` poKomponent's; the
people and units inside are felleskomponent1 types. henvisning_v2 calls these in the schema's order."""

from __future__ import annotations

from lxml import etree

from app.adapters.kith import _henv_common as c
from app.adapters.kith import _xml as x
from app.adapters.kith import msghead
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import (
    AssociatedUnit,
    Coded,
    ContactPerson,
    MedicationReview,
    ReferralConsent,
    SentDocument,
)

NS_FK1 = c.NS_FK1


def parse_units(doc: etree._Element, po: str) -> tuple[AssociatedUnit, ...]:
    return tuple(
        AssociatedUnit(
            organisation=msghead.parse_organisation(x.require(el, po, "Kontaktenhet"), NS_FK1),
            note=x.text(el, po, "Merknad"),
        )
        for el in x.children(doc, po, "TilknyttetEnhet")
    )


def put_units(doc: etree._Element, po: str, units: tuple[AssociatedUnit, ...]) -> None:
    for unit in units:
        el = x.sub(doc, po, "TilknyttetEnhet")
        c.put_fk1_organisation(x.sub(el, po, "Kontaktenhet"), unit.organisation)
        x.opt_text(el, po, "Merknad", unit.note)


def parse_sent_documents(doc: etree._Element, po: str) -> tuple[SentDocument, ...]:
    out = []
    for el in x.children(doc, po, "SendtDokument"):
        sent = x.to_bool(x.text(el, po, "JaNei"), "JaNei")
        if sent is None:
            raise KithError(AppRecError.NOT_VALID, "mandatory element <JaNei> is missing")
        out.append(
            SentDocument(
                information=x.coded(x.require(el, po, "Opplysning")) or Coded(),
                sent=sent,
                date=x.to_date(x.text(el, po, "DatoSendt"), "DatoSendt"),
                recipient_type=x.coded(el, po, "TypeMottaker"),
                recipient_name=x.text(el, po, "NavnMottaker"),
                note=x.text(el, po, "Merknad"),
            )
        )
    return tuple(out)


def put_sent_documents(doc: etree._Element, po: str, documents: tuple[SentDocument, ...]) -> None:
    for d in documents:
        el = x.sub(doc, po, "SendtDokument")
        x.put_coded(el, po, "Opplysning", d.information)
        x.put_bool(el, po, "JaNei", d.sent)
        x.put_date(el, po, "DatoSendt", d.date)
        x.put_coded(el, po, "TypeMottaker", d.recipient_type)
        x.opt_text(el, po, "NavnMottaker", d.recipient_name)
        x.opt_text(el, po, "Merknad", d.note)


def parse_contact_persons(doc: etree._Element, po: str) -> tuple[ContactPerson, ...]:
    out = []
    for el in x.children(doc, po, "PasientrelatertKontaktperson"):
        name, idents, address, telecoms = c.parse_fk1_person(x.require(el, po, "Referanseperson"))
        out.append(
            ContactPerson(
                name=name,
                idents=idents,
                address=address,
                telecoms=telecoms,
                position=x.text(el, po, "StillingRolle"),
                workplace=x.text(el, po, "Arbeidssted"),
                note=x.text(el, po, "Merknad"),
            )
        )
    return tuple(out)


def put_contact_persons(doc: etree._Element, po: str, persons: tuple[ContactPerson, ...]) -> None:
    for person in persons:
        el = x.sub(doc, po, "PasientrelatertKontaktperson")
        x.opt_text(el, po, "StillingRolle", person.position)
        x.opt_text(el, po, "Arbeidssted", person.workplace)
        c.put_fk1_person(x.sub(el, po, "Referanseperson"), person.name, person)
        x.opt_text(el, po, "Merknad", person.note)


def parse_medication_review(doc: etree._Element, po: str) -> MedicationReview | None:
    el = x.child(doc, po, "Legemiddelgjennomgang")
    if el is None:
        return None
    return MedicationReview(
        reviewed=x.to_date(x.text(el, po, "DatoLegemiddelgjennomgang"), "DatoLegemiddelgjennomgang"),
        reconciled=x.to_date(x.text(el, po, "DatoSamstemming"), "DatoSamstemming"),
        note=x.text(el, po, "Merknad"),
    )


def put_medication_review(doc: etree._Element, po: str, review: MedicationReview | None) -> None:
    if review is None:
        return
    el = x.sub(doc, po, "Legemiddelgjennomgang")
    x.put_date(el, po, "DatoLegemiddelgjennomgang", review.reviewed)
    x.put_date(el, po, "DatoSamstemming", review.reconciled)
    x.opt_text(el, po, "Merknad", review.note)


def parse_consents(doc: etree._Element, ns: str) -> tuple[ReferralConsent, ...]:
    return tuple(
        ReferralConsent(
            status=x.coded(x.require(el, ns, "ConsentStatus")) or Coded(),
            date=x.to_date(x.text(el, ns, "ConsentDate"), "ConsentDate"),
            note=x.text(el, ns, "Merknad"),
            given_by=x.text(el, ns, "GivenBy"),
        )
        for el in x.children(doc, ns, "Consent")
    )


def put_consents(doc: etree._Element, ns: str, consents: tuple[ReferralConsent, ...]) -> None:
    for consent in consents:
        el = x.sub(doc, ns, "Consent")
        x.put_coded(el, ns, "ConsentStatus", consent.status)
        x.put_date(el, ns, "ConsentDate", consent.date)
        x.opt_text(el, ns, "Merknad", consent.note)
        x.opt_text(el, ns, "GivenBy", consent.given_by)


# Children of the elements above that the model holds, for henvisning_v2's unmapped-element check (an
# fk1:Person's DateOfBirth, Sex and Nationality are not kept for a relative or a contact person).
MAPPED: dict[str, frozenset[str]] = {
    "TilknyttetEnhet": frozenset({"Kontaktenhet", "Merknad"}),
    "Kontaktenhet": frozenset({"TypeOrganisation", "OrganisationName", "Ident", "Address", "TeleCom"})
    | {"Organisation"},
    "Organisation": frozenset({"TypeOrganisation", "OrganisationName", "Ident", "Address", "TeleCom"})
    | {"Organisation"},
    "SendtDokument": frozenset({"Opplysning", "JaNei", "DatoSendt", "TypeMottaker", "NavnMottaker"})
    | {"Merknad"},
    "PasientrelatertKontaktperson": frozenset({"StillingRolle", "Arbeidssted", "Referanseperson", "Merknad"}),
    "Referanseperson": frozenset({"FamilyName", "MiddleName", "GivenName", "Ident", "Address", "TeleCom"}),
    "Legemiddelgjennomgang": frozenset({"DatoLegemiddelgjennomgang", "DatoSamstemming", "Merknad"}),
    "Consent": frozenset({"ConsentStatus", "ConsentDate", "Merknad", "GivenBy"}),
}
