"""M96 Reseptliste ↔ a FHIR searchset Bundle: one `match` MedicationRequest per listed prescription (built
from its embedded M1, as `to_fhir.prescription_to_bundle` builds it) with its Patient, prescriber and
Medication as `include` entries. The list element's own data (RF status, dispenser, recall, dispenses so
far) rides on the MedicationRequest in one complex extension, so the list maps back exactly."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from app.adapters.eresept._fhir_parties import resolver
from app.adapters.eresept.from_fhir import RESEPTFORMIDLEREN, prescription_from_request
from app.adapters.eresept.model import (
    Envelope,
    ListedDispense,
    ListedPrescription,
    Prescription,
    PrescriptionList,
)
from app.adapters.eresept.to_fhir import prescription_to_bundle
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Organisation, Quantity

Json = dict[str, Any]
EXT_LIST_ITEM = f"{f.SD}/eresept-reseptliste-element"
RECALLED_STATUS = "cancelled"


def _dispense_ext(d: ListedDispense) -> Json:
    parts = [
        f.ext("nameFormStrength", "String", d.name_form_strength),
        f.ext("packagesTotal", "Decimal", float(d.packages_total)),
        f.ext("packagesLast", "Decimal", float(d.packages_last)),
        f.ext("lastDispensed", "DateTime", d.last_dispensed.isoformat()),
    ]
    if d.item_number is not None:
        parts.append(f.ext("itemNumber", "String", d.item_number))
    if d.package_size is not None:
        size = {
            k: v for k, v in (("value", d.package_size.value), ("unit", d.package_size.unit)) if v is not None
        }
        parts.append(f.ext("packageSize", "Quantity", size))
    return {"url": "dispense", "extension": parts}


def _item_ext(item: ListedPrescription) -> Json:
    parts = [f.ext("status", "CodeableConcept", f.cc(item.status))]
    if item.dispenser_name is not None:
        parts.append(f.ext("dispenserName", "String", item.dispenser_name))
    if item.recalled is not None:
        parts.append(f.ext("recalled", "Boolean", item.recalled))
    if item.recall_reason is not None:
        parts.append(f.ext("recallReason", "CodeableConcept", f.cc(item.recall_reason)))
    parts.extend(_dispense_ext(d) for d in item.dispenses)
    return f.complex_ext(EXT_LIST_ITEM, parts)


def entry(full_url: str, resource: Json, mode: str) -> Json:
    return {"fullUrl": full_url, "resource": resource, "search": {"mode": mode}}


def searchset(entries: list[Json], total: int) -> Json:
    """A searchset Bundle: `total` matches, no `request` on entries (bdl-3)."""
    return {"resourceType": "Bundle", "type": "searchset", "total": total, "entry": entries}


def prescription_entries(rx: Prescription, extension: Json, status: Json | None = None) -> list[Json]:
    """The embedded M1 as `prescription_to_bundle` maps it: its MedicationRequest a `match` carrying
    `extension` (and `status` fields, when RF's state differs), the other resources `include`s."""
    out = []
    for e in prescription_to_bundle(rx)["entry"]:
        resource = dict(e["resource"])
        is_request = resource["resourceType"] == "MedicationRequest"
        if is_request:
            resource["extension"] = [*resource.get("extension", []), extension]
            resource.update(status or {})
        out.append(entry(e["fullUrl"], resource, "match" if is_request else "include"))
    return out


def prescription_list_to_searchset(listing: PrescriptionList) -> Json:
    by_id = {rx.envelope.msg_id: rx for rx in listing.prescriptions}
    entries: list[Json] = []
    for item in listing.items:
        rx = by_id.get(item.prescription_id)
        if rx is None:  # RF always sends the M1 along; a bare list element has no FHIR resource to carry it
            raise KithError(AppRecError.OTHER, "a listed prescription has no embedded M1")
        status: Json = {}
        if item.recalled:
            status["status"] = RECALLED_STATUS
            if item.recall_reason is not None:
                status["statusReason"] = f.cc(item.recall_reason)
        entries.extend(prescription_entries(rx, _item_ext(item), status))
    return searchset(entries, len(listing.items))


def _part(parts: list[Json], name: str, value_type: str) -> Any:
    return f.ext_value({"extension": parts}, name, value_type)


def _listed(request: Json, prescription_id: str) -> ListedPrescription:
    found = f.exts(request, EXT_LIST_ITEM)
    parts: list[Json] = found[0].get("extension", []) if found else []
    dispenses = []
    for d in (p for p in parts if p.get("url") == "dispense"):
        sub = d.get("extension", [])
        size = _part(sub, "packageSize", "Quantity")
        dispenses.append(
            ListedDispense(
                name_form_strength=_part(sub, "nameFormStrength", "String") or "",
                packages_total=Decimal(str(_part(sub, "packagesTotal", "Decimal"))),
                packages_last=Decimal(str(_part(sub, "packagesLast", "Decimal"))),
                last_dispensed=datetime.fromisoformat(_part(sub, "lastDispensed", "DateTime")),
                item_number=_part(sub, "itemNumber", "String"),
                package_size=None
                if size is None
                else Quantity(value=size.get("value"), unit=size.get("unit")),
            )
        )
    status = _part(parts, "status", "CodeableConcept")
    return ListedPrescription(
        prescription_id=prescription_id,
        status=f.coded(status)
        if status is not None
        else f.coded({"coding": [{"code": "E", "display": "Ekspederbar"}]}),
        dispenser_name=_part(parts, "dispenserName", "String"),
        recalled=_part(parts, "recalled", "Boolean"),
        recall_reason=f.opt_coded(_part(parts, "recallReason", "CodeableConcept")),
        dispenses=tuple(dispenses),
    )


def requested_prescriptions(bundle: Json, generated: datetime | None) -> list[tuple[Json, Prescription]]:
    """Each MedicationRequest of a searchset with its prescription (the M1 as written: active, whatever
    RF's list says of it now)."""
    resolve = resolver(bundle)
    out = []
    for e in bundle.get("entry", []):
        resource = e.get("resource") or {}
        if resource.get("resourceType") == "MedicationRequest":
            active = {**resource, "status": "active"}
            out.append((resource, prescription_from_request(active, resolve, generated=generated)))
    return out


def rf_envelope(
    msg_id: str,
    receiver: Organisation,
    *,
    sender: Organisation = RESEPTFORMIDLEREN,
    generated: datetime | None = None,
) -> Envelope:
    """The envelope of what RF sends back (the `envelope` of the `*_from_searchset`/`*_from_bundle`
    functions): no patient, as a list may span patients and each item names its own."""
    return Envelope(
        msg_id=msg_id, generated=generated or datetime.now().astimezone(), sender=sender, receiver=receiver
    )


def prescription_list_from_searchset(
    bundle: Json,
    envelope: Envelope,
) -> PrescriptionList:
    """A searchset of MedicationRequests (each with its includes) → M96 in `envelope` (`rf_envelope`: RF to the prescriber)."""
    prescriptions = []
    items = []
    for resource, rx in requested_prescriptions(bundle, envelope.generated):
        prescriptions.append(rx)
        items.append(_listed(resource, rx.envelope.msg_id))
    return PrescriptionList(envelope=envelope, items=tuple(items), prescriptions=tuple(prescriptions))
