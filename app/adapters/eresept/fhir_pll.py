"""M912 Nedlasting av PLL (varer i bruk) ↔ the patient's medication list: a collection Bundle with the
medication list pack's `List` (status current, mode working, its code; `model.empty_list`), the Patient
and one MedicationStatement per m92:Reseptinfo (`_fhir_reseptinfo.info_statement`).

The List's identifier (medication-list|<Patient id>) needs the stored Patient's id: the caller sets it
when it stores the List. The multidose doctor is the pack's multidose-responsible extension (organisation
by HER-id, as the M912 names it), the pharmacy, RefMsgId and the lists in use (VarerIBrukB64, as
attachments) ride in extensions of the List.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from app.adapters.eresept._fhir_parties import BundleBuilder, resolver
from app.adapters.eresept._fhir_reseptinfo import (
    doctor_ext,
    doctor_from,
    info_from_statement,
    info_statement,
    pharmacy_ext,
    pharmacy_from,
)
from app.adapters.eresept.fhir_dispenser import FNR_TYPE
from app.adapters.eresept.model import Envelope, MedicationsInUse, MultidoseUser
from app.adapters.eresept.pll import NS_M912_2018
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Ident
from app.resources.medication_list.model import empty_list
from app.resources.no_basis.identifiers import FNR_SYSTEM

Json = dict[str, Any]
EXT_REF_MSG_ID = f"{f.SD}/eresept-ref-msg-id"  # RefMsgId: the request this download answers
EXT_LISTS_IN_USE = f"{f.SD}/eresept-varer-i-bruk"  # valueAttachment: one VarerIBrukB64
OLD = "old"  # Identifier.use of AndreFnr: other fødselsnumre the patient has had


def _fnr(fnr: str, use: str | None = None) -> Json:
    out = f.identifier(Ident(id=fnr, type=FNR_TYPE))
    return out if use is None else {"use": use, **out}


def medications_in_use_to_bundle(pll: MedicationsInUse) -> Json:
    build = BundleBuilder(pll.envelope.msg_id)
    patient_url = build.full_url("patient")
    patient: Json = {
        "resourceType": "Patient",
        "identifier": [_fnr(pll.patient.fnr), *(_fnr(other, OLD) for other in pll.other_fnrs)],
    }
    if pll.prescriptions:  # for display: each statement keeps the name as RF listed it
        first = pll.prescriptions[0]
        patient["name"] = [{"family": first.family_name, "given": [first.given_name]}]
    statements = [
        (build.full_url(f"statement-{i}"), info_statement(info, patient_url))
        for i, info in enumerate(pll.prescriptions)
    ]
    medication_list = {k: v for k, v in empty_list("").items() if k not in ("identifier", "subject")}
    medication_list["subject"] = f.reference(patient_url)
    medication_list["date"] = f.fhir_datetime(pll.envelope.generated)
    extensions = []
    if pll.patient.doctor is not None:
        extensions.append(doctor_ext(pll.patient.doctor))
    if pll.patient.pharmacy is not None:
        extensions.append(pharmacy_ext(pll.patient.pharmacy))
    if pll.ref_msg_id is not None:
        extensions.append(f.ext(EXT_REF_MSG_ID, "String", pll.ref_msg_id))
    for data in pll.lists:
        attachment = {"contentType": "application/xml", "data": base64.b64encode(data).decode("ascii")}
        extensions.append(f.ext(EXT_LISTS_IN_USE, "Attachment", attachment))
    if extensions:
        medication_list["extension"] = extensions
    if statements:
        medication_list["entry"] = [{"item": f.reference(url)} for url, _ in statements]
    entries = [
        {"fullUrl": build.full_url("list"), "resource": medication_list},
        {"fullUrl": patient_url, "resource": patient},
        *({"fullUrl": url, "resource": statement} for url, statement in statements),
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def medications_in_use_from_bundle(
    bundle: Json,
    envelope: Envelope,
    version: str = NS_M912_2018,
) -> MedicationsInUse:
    """The medication list (List, Patient, MedicationStatements) → M912 in `envelope` (`rf_envelope`: RF to the prescriber)."""
    resolve = resolver(bundle)
    resources = [e.get("resource") or {} for e in bundle.get("entry", [])]
    medication_list = next((r for r in resources if r.get("resourceType") == "List"), None)
    if medication_list is None:
        raise KithError(AppRecError.OTHER, "the Bundle has no List")
    patient = resolve(f.ref_of(medication_list.get("subject"))) or {}
    fnrs = [i for i in patient.get("identifier", []) if i.get("system") == FNR_SYSTEM]
    current = next((i.get("value") for i in fnrs if i.get("use") != OLD), None)
    if current is None:
        raise KithError(AppRecError.OTHER, "the List's Patient has no fødselsnummer")
    statements = [resolve(f.ref_of(e.get("item"))) for e in medication_list.get("entry", [])]
    lists = []
    for attachment in (e.get("valueAttachment") or {} for e in f.exts(medication_list, EXT_LISTS_IN_USE)):
        try:
            lists.append(base64.b64decode(attachment.get("data", ""), validate=True))
        except (binascii.Error, ValueError):
            raise KithError(AppRecError.OTHER, "a list in use is not valid base64") from None
    return MedicationsInUse(
        envelope=envelope,
        version=version,
        patient=MultidoseUser(
            fnr=current, doctor=doctor_from(medication_list), pharmacy=pharmacy_from(medication_list)
        ),
        ref_msg_id=f.ext_value(medication_list, EXT_REF_MSG_ID, "String"),
        other_fnrs=tuple(i.get("value", "") for i in fnrs if i.get("use") == OLD),
        prescriptions=tuple(info_from_statement(s) for s in statements if s is not None),
        lists=tuple(lists),
    )
