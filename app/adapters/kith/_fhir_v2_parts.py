"""FHIR R4 for the Henvisning 2.0 elements of `_henv_v2_parts`, both ways (to_fhir and from_fhir call these);
the table is "Surroundings (2.0)" in the README. Associated units are Organizations and contact persons
RelatedPersons (both in `ServiceRequest.supportingInfo`); the rest are ServiceRequest extensions.

A sent document is a statement that something was (or was not) sent elsewhere, with no content to point at,
so it is no DocumentReference. The referral's consent is no FHIR `Consent` resource: on this server those are
the access policy's grants (reservation, fullmakt, block), and ConsentStatus is a code of its own that
`Consent.status` (a required code) cannot hold faithfully.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith.model import (
    Coded,
    ContactPerson,
    MedicationReview,
    Referral,
    ReferralConsent,
    SentDocument,
)

Json = f.Json

EXT_ASSOCIATED_UNIT = f"{f.SD}/kith-associated-unit"  # po:TilknyttetEnhet
EXT_SENT_DOCUMENT = f"{f.SD}/kith-sent-document"  # po:SendtDokument
EXT_MEDICATION_REVIEW = f"{f.SD}/kith-medication-review"  # po:Legemiddelgjennomgang
EXT_CONSENT = f"{f.SD}/kith-consent"  # Consent
EXT_PATIENT_CONTACT = f"{f.SD}/kith-patient-contact"  # on a RelatedPerson: po:PasientrelatertKontaktperson
EXT_NOTE = f.EXT_NOTE


def extensions(ref: Referral, unit_urls: list[str | None]) -> list[Json]:
    """The ServiceRequest extensions; `unit_urls` are the deepest Organization of each associated unit."""
    out = []
    for unit, url in zip(ref.associated_units, unit_urls, strict=True):
        parts = [] if url is None else [f.ext("organization", "Reference", f.reference(url))]
        out.append(f.complex_ext(EXT_ASSOCIATED_UNIT, parts + r._s("note", unit.note)))
    for d in ref.sent_documents:
        parts = [
            f.ext("information", "CodeableConcept", f.cc(d.information)),
            f.ext("sent", "Boolean", d.sent),
        ]
        parts += r._d("date", d.date) + r._c("recipientType", d.recipient_type)
        parts += r._s("recipientName", d.recipient_name) + r._s("note", d.note)
        out.append(f.complex_ext(EXT_SENT_DOCUMENT, parts))
    review = ref.medication_review
    if review is not None:
        parts = r._d("reviewed", review.reviewed) + r._d("reconciled", review.reconciled)
        out.append(f.complex_ext(EXT_MEDICATION_REVIEW, parts + r._s("note", review.note)))
    for consent in ref.consents:
        parts = [f.ext("status", "CodeableConcept", f.cc(consent.status)), *r._d("date", consent.date)]
        parts += r._s("note", consent.note) + r._s("givenBy", consent.given_by)
        out.append(f.complex_ext(EXT_CONSENT, parts))
    return out


def contact_person(cp: ContactPerson, patient: str) -> Json:
    """The RelatedPerson of a patient-related contact person (no relationship code: the role is free text)."""
    out: Json = {"resourceType": "RelatedPerson"}
    out["extension"] = [f.complex_ext(EXT_PATIENT_CONTACT, r._s("workplace", cp.workplace))]
    out["extension"] += r._s(EXT_NOTE, cp.note)
    out |= f.person_fields(cp.name, cp.idents, cp.telecoms, cp.address)
    out["patient"] = f.reference(patient)
    if cp.position is not None:
        out["relationship"] = [{"text": cp.position}]
    return out


def is_contact_person(resource: Json) -> bool:
    return resource.get("resourceType") == "RelatedPerson" and bool(f.exts(resource, EXT_PATIENT_CONTACT))


def contact_person_from(rp: Json) -> ContactPerson:
    name, idents, telecoms, address = f.from_person_fields(rp)
    relationship = rp.get("relationship")
    position = relationship[0].get("text") if isinstance(relationship, list) and relationship else None
    return ContactPerson(
        name=name,
        idents=idents,
        address=address,
        telecoms=telecoms,
        position=position,
        workplace=_str(f.exts(rp, EXT_PATIENT_CONTACT)[0], "workplace"),
        note=f.ext_value(rp, EXT_NOTE, "String"),
    )


def _str(extension: Any, name: str) -> str | None:
    value = f.ext_value(extension, name, "String")
    return value if isinstance(value, str) else None


def _coded(extension: Any, name: str) -> Coded | None:
    return f.opt_coded(f.ext_value(extension, name, "CodeableConcept"))


def _date(extension: Any, name: str) -> date | None:
    return f.from_fhir_date(f.ext_value(extension, name, "Date"))


def unit_references(sr: Json) -> list[tuple[str | None, str | None]]:
    """(the deepest Organization, the note) of each associated unit, in order."""
    return [
        (f.ref_of(f.ext_value(e, "organization", "Reference")), _str(e, "note"))
        for e in f.exts(sr, EXT_ASSOCIATED_UNIT)
    ]


def sent_documents(sr: Json) -> tuple[SentDocument, ...]:
    return tuple(
        SentDocument(
            information=_coded(e, "information") or Coded(),
            sent=f.ext_value(e, "sent", "Boolean") is True,
            date=_date(e, "date"),
            recipient_type=_coded(e, "recipientType"),
            recipient_name=_str(e, "recipientName"),
            note=_str(e, "note"),
        )
        for e in f.exts(sr, EXT_SENT_DOCUMENT)
    )


def medication_review(sr: Json) -> MedicationReview | None:
    e = next(iter(f.exts(sr, EXT_MEDICATION_REVIEW)), None)
    if e is None:
        return None
    return MedicationReview(
        reviewed=_date(e, "reviewed"), reconciled=_date(e, "reconciled"), note=_str(e, "note")
    )


def consents(sr: Json) -> tuple[ReferralConsent, ...]:
    return tuple(
        ReferralConsent(
            status=_coded(e, "status") or Coded(),
            date=_date(e, "date"),
            note=_str(e, "note"),
            given_by=_str(e, "givenBy"),
        )
        for e in f.exts(sr, EXT_CONSENT)
    )
