"""Lab results and attachments of an Epikrise in FHIR, both ways (pure).

A ResultItem is an `Observation` (category laboratory, `code` = ClinInv/Id as given, e.g. NLK
`urn:oid:2.16.578.1.12.4.1.1.7280`, the value in its native form, `interpretation` from DevResultInd,
`performer` = the lab of InfItem/Origin); the ResultItem itself is also kept whole in `ext:kith-epikrise-item`
(`result`, as for a referral's results) so that it is written back exactly. A nested Event groups results:
a `DiagnosticReport`. A RefDoc is a `DocumentReference` of its own (`context.related` the Composition).
Observations and DocumentReferences written on FHIR (without the extension) are read from their native
elements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.adapters.epikrise._fhir import CODES, EXT_ITEM, LOINC, parts
from app.adapters.epikrise.model import ResultEntry, ResultGroup
from app.adapters.epikrise.texts import plain_text
from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.model import Attachment, Coded, LabResult, Quantity, ResultKind, TextSection
from app.adapters.kith.to_fhir import attachment_json
from app.adapters.kith.ucum import fhir_quantity

Json = dict[str, Any]
Resolve = Callable[[str], Json | None]

RESULTS_SECTION = {
    "system": LOINC,
    "code": "30954-2",
    "display": "Relevant diagnostic tests/laboratory data Narrative",
}
LAB_REPORT = {"system": LOINC, "code": "11502-2", "display": "Laboratory report"}
ATTACHMENTS_SECTION = {"system": CODES, "code": "attachments", "display": "Vedlegg"}
LABORATORY = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "laboratory",
    "display": "Laboratory",
}
LAB_SERVICE = {
    "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
    "code": "LAB",
    "display": "Laboratory",
}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# DevResultInd codes with an HL7 meaning; the KITH coding itself always comes first.
_INTERPRETATIONS = {"H": "High", "L": "Low", "HH": "Critical high", "LL": "Critical low", "A": "Abnormal"}
_COMPARATORS = frozenset({"<", "<=", ">=", ">"})
LAB_ITEM = Coded(code="LAB", display="Laboratoriesvar")  # InfItem/Type of a result written on FHIR
ATTACHMENT = Coded(code="A", display="Vedlegg")  # RefDoc/MsgType of a document written on FHIR


def _value(res: LabResult) -> Json:
    if res.kind is ResultKind.NUMERIC and res.value is not None:
        quantity = fhir_quantity(res.value.value, res.value.unit)
        if res.comparator is not None and res.comparator.code in _COMPARATORS:
            quantity["comparator"] = res.comparator.code
        return {"valueQuantity": quantity}
    if res.kind is ResultKind.INTERVAL and (res.low or res.high):
        bounds = {k: fhir_quantity(q.value, q.unit) for k, q in (("low", res.low), ("high", res.high)) if q}
        return {"valueRange": bounds}
    if res.kind is ResultKind.DATE and res.date_value is not None:
        return {"valueDateTime": f.fhir_datetime(res.date_value)}
    if res.text is not None and res.text.text:
        return {"valueString": plain_text(res.text.text)}
    if res.text is not None and res.text.codes:
        return {"valueCodeableConcept": f.cc(res.text.codes[0])}
    return {}


def _interpretation(flag: Coded) -> Json:
    out = f.cc(flag)
    meaning = _INTERPRETATIONS.get(flag.code or "")
    if meaning is not None and "coding" in out:
        out["coding"].append({"system": INTERPRETATION, "code": flag.code, "display": meaning})
    return out


def observation(entry: ResultEntry, patient: str, encounter: str, lab: Json | None, cancel: bool) -> Json:
    """The Observation of a result (without identifiers: the caller's)."""
    res = entry.result
    item = [*parts(type=entry.type, start=entry.start, end=entry.end), r._result_ext(res)]
    kind = res.service_type.code if res.service_type else None
    status = "entered-in-error" if cancel else {"C": "cancelled", "M": "amended"}.get(kind or "", "final")
    out: Json = {"resourceType": "Observation", "extension": [f.complex_ext(EXT_ITEM, item)]}
    out |= {
        "status": status,
        "category": [{"coding": [LABORATORY]}],
        "code": f.cc(res.investigation),
        "subject": f.reference(patient),
        "encounter": f.reference(encounter),
    }
    effective = res.investigation_date or entry.start
    if effective is not None:
        out["effectiveDateTime"] = f.fhir_datetime(effective)
    if lab is not None:
        out["performer"] = [lab]
    out |= _value(res)
    if res.deviation is not None:
        out["interpretation"] = [_interpretation(res.deviation)]
    if res.comment is not None:
        out["note"] = [{"text": res.comment}]
    return out


def report(
    group: ResultGroup, patient: str, encounter: str, labs: list[Json], members: list[str], cancel: bool
) -> Json:
    """The DiagnosticReport of a nested Event (without identifiers)."""
    item = parts(kind=group.kind, specialty=group.specialty)
    out: Json = {"resourceType": "DiagnosticReport"}
    if item:
        out["extension"] = [f.complex_ext(EXT_ITEM, item)]
    out |= {
        "status": "entered-in-error" if cancel else "final",
        "category": [{"coding": [LAB_SERVICE]}],
        "code": {"coding": [LAB_REPORT]},
        "subject": f.reference(patient),
        "encounter": f.reference(encounter),
    }
    if group.start is not None:
        out["effectivePeriod"] = {"start": f.fhir_datetime(group.start)}
        if group.end is not None:
            out["effectivePeriod"]["end"] = f.fhir_datetime(group.end)
    unique = list({ref["reference"]: ref for ref in labs}.values())
    if unique:
        out["performer"] = unique
    out["result"] = [f.reference(u) for u in members]
    return out


def attachment_document(att: Attachment, patient: str, composition: str, cancel: bool) -> Json:
    """The DocumentReference of a RefDoc (the caller sets its identifiers first, then `refdoc_id`)."""
    return {
        "resourceType": "DocumentReference",
        "status": "entered-in-error" if cancel else "current",
        "type": f.cc(att.msg_type),
        "subject": f.reference(patient),
        "content": [
            {"attachment": attachment_json(att) or {"extension": [f.ext(f.EXT_DAR, "Code", "unknown")]}}
        ],
        "context": {"related": [f.reference(composition)]},
    }


def refdoc_id(att: Attachment) -> list[Json]:
    return [] if att.id is None else [{"system": f.REFDOC_ID_SYSTEM, "value": att.id}]


# --- back ------------------------------------------------------------------------------------------------------


def attachment_of(doc: Json) -> Attachment:
    found = ff._attachment(doc)
    return found if doc.get("type") else replace(found, msg_type=ATTACHMENT)


def _native_quantity(q: Any) -> Quantity | None:
    if not isinstance(q, dict):
        return None
    return Quantity(value=q.get("value"), unit=q.get("unit") or q.get("code"))


def _native_result(obs: Json) -> LabResult:
    """A result written on FHIR: its native elements."""
    notes = obs.get("note") or []
    base = LabResult(
        investigation=f.coded(obs.get("code")),
        kind=ResultKind.TEXT,
        investigation_date=f.from_fhir_datetime(obs.get("effectiveDateTime")),
        comment=notes[0].get("text") if notes else None,
        deviation=f.opt_coded((obs.get("interpretation") or [None])[0]),
    )
    fields: dict[str, Any] = {}
    if isinstance(q := obs.get("valueQuantity"), dict):
        comparator = q.get("comparator")
        fields = {"kind": ResultKind.NUMERIC, "value": _native_quantity(q)}
        fields["comparator"] = Coded(code=comparator) if comparator else None
    elif isinstance(rng := obs.get("valueRange"), dict):
        fields = {"kind": ResultKind.INTERVAL}
        fields |= {"low": _native_quantity(rng.get("low")), "high": _native_quantity(rng.get("high"))}
    elif "valueDateTime" in obs:
        fields = {"kind": ResultKind.DATE, "date_value": f.from_fhir_datetime(obs["valueDateTime"])}
    elif "valueString" in obs:
        fields = {"text": TextSection(text=obs["valueString"])}
    elif "valueCodeableConcept" in obs:
        fields = {"text": TextSection(codes=(f.coded(obs["valueCodeableConcept"]),))}
    return replace(base, **fields)


def _item(resource: Json) -> Json | None:
    found = f.exts(resource, EXT_ITEM)
    return found[0] if found else None


def _sub(item: Json | None, name: str) -> list[Json]:
    return [e for e in (item or {}).get("extension", []) if e.get("url") == name]


def _coded(item: Json | None, name: str) -> Coded | None:
    return next((f.coded(e.get("valueCodeableConcept")) for e in _sub(item, name)), None)


def _time(item: Json | None, name: str) -> Any:
    return next((f.from_fhir_datetime(e.get("valueDateTime")) for e in _sub(item, name)), None)


def entry_of(obs: Json, resolve: Resolve) -> ResultEntry:
    item = _item(obs)
    kept = _sub(item, "result")
    performer = f.ref_of((obs.get("performer") or [None])[0])
    found = resolve(performer) if performer else None
    lab = ff._party(performer, [], resolve) if (found or {}).get("resourceType") == "Organization" else None
    return ResultEntry(
        type=_coded(item, "type") or LAB_ITEM,
        result=ff._result(kept[0]) if kept else _native_result(obs),
        start=_time(item, "start"),
        end=_time(item, "end"),
        lab=lab,
    )


def group_of(diagnostic_report: Json, resolve: Resolve) -> ResultGroup:
    item = _item(diagnostic_report)
    period = diagnostic_report.get("effectivePeriod") or {}
    members = [resolve(ref) for m in diagnostic_report.get("result", []) if (ref := f.ref_of(m))]
    return ResultGroup(
        results=tuple(entry_of(o, resolve) for o in members if o and o.get("resourceType") == "Observation"),
        start=f.from_fhir_datetime(period.get("start") or diagnostic_report.get("effectiveDateTime")),
        end=f.from_fhir_datetime(period.get("end")),
        kind=_coded(item, "kind"),
        specialty=_coded(item, "specialty"),
    )
