"""What RF sends a pharmacy, as FHIR searchset Bundles (built like the M96 one in `fhir_lists.py`):

- M92 Reseptliste (utleverer): one `match` MedicationRequest per m92:Reseptinfo (`_fhir_reseptinfo`),
  its Patient an `include` (one per distinct patient); a Multidosebruker marks its Patient with the
  multidose doctor and pharmacy extensions (a Patient of its own when no listed prescription names it).
- M94 Nedlasting av resept: the downloaded M1 as `prescription_to_bundle` maps it, its MedicationRequest
  the one `match`, carrying RF's download status (and SLV application, co-payments) in one extension.
"""

from __future__ import annotations

import json
from typing import Any

from app.adapters.eresept._fhir_parties import BundleBuilder, patient_resource, resolver
from app.adapters.eresept._fhir_parts import BOOLEAN, CODED, DATE, QUANTITY, parts_of, read_parts
from app.adapters.eresept._fhir_reseptinfo import (
    doctor_ext,
    doctor_from,
    info_from_request,
    info_request,
    pharmacy_ext,
    pharmacy_from,
)
from app.adapters.eresept.fhir_lists import entry as search_entry
from app.adapters.eresept.fhir_lists import (
    prescription_entries,
    requested_prescriptions,
    searchset,
)
from app.adapters.eresept.model import (
    CoPayment,
    DispenserList,
    Download,
    Envelope,
    MultidoseUser,
    PrescriptionInfo,
)
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded, HumanName, Ident, Patient
from app.resources.no_basis.identifiers import FNR_SYSTEM

Json = dict[str, Any]
EXT_MULTIDOSE_USER = f"{f.SD}/eresept-multidosebruker"  # valueString: the Fnr RF lists as multidose user
EXT_DOWNLOAD = f"{f.SD}/eresept-nedlasting"
FNR_TYPE = Coded(code="FNR", system="2.16.578.1.12.4.1.1.8116", display="Fødselsnummer")
DOWNLOAD = (
    ("status", "status", CODED),
    ("applicationSent", "application_sent", DATE),
    ("applicationAnswered", "application_answered", DATE),
    ("exemptionGranted", "exemption_granted", BOOLEAN),
    ("applicationStatus", "application_status", CODED),
)
CO_PAYMENT = (("periodStart", "period_start", DATE), ("paid", "paid", QUANTITY))


# --- M92 ----------------------------------------------------------------------------------------------------


def _info_patient(info: PrescriptionInfo) -> Json:
    name = HumanName(family=info.family_name, given=info.given_name, middle=info.middle_name)
    idents = () if info.patient is None else (info.patient,)
    return patient_resource(Patient(idents=idents, name=name, address=info.address))


def dispenser_list_to_searchset(listing: DispenserList) -> Json:
    build = BundleBuilder(listing.envelope.msg_id)
    patients: dict[str, tuple[str, Json]] = {}  # the Patient's content → (fullUrl, resource)
    matches = []
    for info in listing.items:
        patient = _info_patient(info)
        url, _ = patients.setdefault(
            json.dumps(patient, sort_keys=True), (build.full_url(f"patient-{len(patients)}"), patient)
        )
        matches.append(search_entry(build.full_url(info.prescription_id), info_request(info, url), "match"))
    for user in listing.multidose_users:
        found = next((r for _, r in patients.values() if _fnr(r) == user.fnr), None)
        if found is None:
            found = {
                "resourceType": "Patient",
                "identifier": [f.identifier(Ident(id=user.fnr, type=FNR_TYPE))],
            }
            patients[f"multidose-{user.fnr}"] = (build.full_url(f"multidose-{user.fnr}"), found)
        found.setdefault("extension", []).append(f.ext(EXT_MULTIDOSE_USER, "String", user.fnr))
        if user.doctor is not None:
            found["extension"].append(doctor_ext(user.doctor))
        if user.pharmacy is not None:
            found["extension"].append(pharmacy_ext(user.pharmacy))
    includes = [search_entry(url, resource, "include") for url, resource in patients.values()]
    return searchset(matches + includes, len(listing.items))


def _fnr(patient: Json) -> str | None:
    return next(
        (i.get("value") for i in patient.get("identifier", []) if i.get("system") == FNR_SYSTEM), None
    )


def dispenser_list_from_searchset(
    bundle: Json,
    envelope: Envelope,
) -> DispenserList:
    """A searchset of MedicationRequests (with their Patients) → M92 in `envelope` (`rf_envelope`: RF to the pharmacy)."""
    resolve = resolver(bundle)
    items = []
    users = []
    for e in bundle.get("entry", []):
        resource = e.get("resource") or {}
        if resource.get("resourceType") == "MedicationRequest":
            patient = resolve(f.ref_of(resource.get("subject"))) or {}
            items.append(info_from_request(resource, patient))
        elif resource.get("resourceType") == "Patient":
            for fnr in (m.get("valueString", "") for m in f.exts(resource, EXT_MULTIDOSE_USER)):
                users.append(
                    MultidoseUser(fnr=fnr, doctor=doctor_from(resource), pharmacy=pharmacy_from(resource))
                )
    return DispenserList(envelope=envelope, items=tuple(items), multidose_users=tuple(users))


# --- M94 ----------------------------------------------------------------------------------------------------


def download_to_searchset(download: Download) -> Json:
    if download.prescription is None:  # the M1 is what the pharmacy downloads: without it nothing maps
        raise KithError(AppRecError.OTHER, "the M94 carries no prescription")
    parts = parts_of(download, DOWNLOAD)
    parts += [f.complex_ext("coPayment", parts_of(c, CO_PAYMENT)) for c in download.co_payments]
    return searchset(prescription_entries(download.prescription, f.complex_ext(EXT_DOWNLOAD, parts)), 1)


def download_from_searchset(
    bundle: Json,
    envelope: Envelope,
) -> Download:
    """A searchset with one MedicationRequest (and its includes) → M94 in `envelope` (`rf_envelope`: RF to the pharmacy)."""
    found = requested_prescriptions(bundle, envelope.generated)
    if len(found) != 1:
        raise KithError(AppRecError.OTHER, "an M94 carries exactly one prescription")
    request, rx = found[0]
    extension = f.exts(request, EXT_DOWNLOAD)
    parts: list[Json] = extension[0].get("extension", []) if extension else []
    fields = read_parts(parts, DOWNLOAD)
    co_payments = tuple(
        CoPayment(**read_parts(p.get("extension", []), CO_PAYMENT))
        for p in parts
        if p.get("url") == "coPayment"
    )
    return Download(
        envelope=envelope,
        **{**fields, "status": fields["status"] or Coded()},
        prescription=rx,
        co_payments=co_payments,
    )
