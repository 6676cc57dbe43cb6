"""Pasientlogistikk (1.5, 1.6, 2.0) -> FHIR R4: pure.

`logistics_bundle(msg, encounter, task)` gives the transaction a logistics message makes and the anchor of
its record; `encounter` and `task` are the stored Encounter of the stay and its discharge-ready Task,
when there are (found by `store`), which the message updates (with If-Match) rather than replaces:

| message | Encounter (the stay) | Task `discharge-ready` (the clock, see clock.py) |
| --- | --- | --- |
| MeldingInnlagtPasient | created, `in-progress`, `period.start` = Hendelsekode 1 | – |
| MeldingUtskrivningsklarPasient | `in-progress` (created if new) | created / renewed: `requested`, input `noticeDate` (Hendelsekode 3), `estimated` (Anslag); owner = the municipality (receiver) |
| AvmeldingUtskrivningsklarPasient | `in-progress` | `cancelled`, output `withdrawn` (Hendelsekode 4), `statusReason` = Merknad |
| MeldingOmUtskrevetPasient | `finished`, `period.end` (Hendelsekode 2), `hospitalization.dischargeDisposition` = UtTil, ext `plo-discharge-state` = Uttilstand | an open one `completed`, output `discharged` |
| OrienteringOmDod | `finished`, `period.end` = Hendelsekode 13, disposition "Død"; `Patient.deceasedDateTime` | an open one `completed`, output `died` |
| TilbakemeldingUtskrivningsklarPasient (2.0, from the municipality) | – | `businessStatus` `can-receive`, output `answered`, `canReceiveFrom` |

Kansellering (C) undoes what its Ny did: an admission's Encounter becomes `entered-in-error`, a notice's
Task `entered-in-error`, a withdrawal / discharge / death is taken back (the Task `requested` again, the
Encounter `in-progress` without its end).
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import intake
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.intake import Anchor
from app.adapters.kith.model import Organisation
from app.adapters.plo import clock
from app.adapters.plo._common import (
    NS,
    SD_EVENT,
    Parties,
    check_patient,
    message_ext,
    org_key,
    parties,
    party_exts,
    patient_key,
    record_key,
)
from app.resources.no_basis.identifiers import DNR_SYSTEM, DUF_SYSTEM, FHN_SYSTEM, FNR_SYSTEM

__all__ = ["check_patient", "logistics_bundle"]
from app.adapters.plo.model import EventCode, Kind, Logistics, PloMessage

Json = dict[str, Any]
STAY_SYSTEM = f"{NS}/plo-stay"  # <hospital key>/<patient key>/<admission date>
PATIENT_STAY_SYSTEM = (
    f"{NS}/plo-patient-stay"  # <hospital key>/<patient key>: every stay of the patient there
)
DISCHARGE_READY_SYSTEM = f"{NS}/plo-discharge-ready"  # the stay's notice: the same value as STAY_SYSTEM
EXT_DISCHARGE_STATE = f"{f.SD}/plo-discharge-state"
PATIENT_KEYS = (FNR_SYSTEM, DNR_SYSTEM, FHN_SYSTEM, DUF_SYSTEM)  # as kith.to_fhir finds a Patient
INPATIENT = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "IMP",
    "display": "inpatient",
}
_ENDS = {
    Logistics.DISCHARGED: ("discharged", EventCode.DISCHARGED),
    Logistics.DEATH: ("died", EventCode.DEAD),
}


def hospital(msg: PloMessage) -> Organisation:
    """The hospital of the stay: the sender, except of the municipality's answer."""
    return msg.receiver if msg.logistics is Logistics.ANSWER else msg.sender


def patient_stay(msg: PloMessage) -> str:
    assert msg.patient is not None
    return f"{org_key(hospital(msg))}/{patient_key(msg.patient)}"


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _when(value: date | datetime) -> str:
    return f.fhir_datetime(value) if isinstance(value, datetime) else value.isoformat()


def stay_key(msg: PloMessage) -> str | None:
    """The stay by its admission day, when the message names it (Hendelsekode 1)."""
    admitted = msg.event(EventCode.ADMITTED)
    return None if admitted is None else f"{patient_stay(msg)}/{_day(admitted.time).isoformat()}"


def fallback_stay_key(msg: PloMessage) -> str:
    """A stay not known here whose message does not name the admission: by the message's first event."""
    first = msg.events[0].time if msg.events else msg.gen_date
    return f"{patient_stay(msg)}/ukjent-{_day(first).isoformat()}"


def identifier_value(resource: Json | None, system: str) -> str | None:
    for i in (resource or {}).get("identifier") or []:
        if i.get("system") == system:
            return str(i.get("value"))
    return None


def _event_exts(msg: PloMessage) -> list[Json]:
    out = []
    for e in msg.events:
        parts = [f.ext("time", "DateTime", _when(e.time))]
        if e.code is not None:
            parts.insert(0, f.ext("code", "CodeableConcept", f.cc(e.code)))
        if e.estimated is not None:
            parts.append(f.ext("estimated", "Boolean", e.estimated))
        if e.description:
            parts.append(f.ext("description", "String", e.description))
        if e.remark:
            parts.append(f.ext("remark", "String", e.remark))
        out.append(f.complex_ext(SD_EVENT, parts))
    return out


def _encounter(msg: PloMessage, p: Parties, stored: Json | None, key: str) -> Json | None:
    cancel = msg.kind is Kind.CANCEL
    enc: Json = (
        copy.deepcopy(stored)
        if stored is not None
        else {"resourceType": "Encounter", "status": "in-progress"}
    )
    enc.pop("meta", None)
    if stored is None:
        enc["identifier"] = [
            {"system": STAY_SYSTEM, "value": key},
            {"system": PATIENT_STAY_SYSTEM, "value": patient_stay(msg)},
        ]
        enc["class"] = INPATIENT
        enc["subject"] = p.subject
        if p.sender.organization is not None and msg.logistics is not Logistics.ANSWER:
            enc["serviceProvider"] = f.reference(p.sender.organization)
    enc["extension"] = [message_ext(msg), *party_exts(p), *_event_exts(msg)]
    admitted = msg.event(EventCode.ADMITTED)
    if admitted is not None and not cancel:
        enc.setdefault("period", {})["start"] = _when(admitted.time)
    kind = msg.logistics
    if kind is Logistics.ADMITTED:
        enc["status"] = "entered-in-error" if cancel else "in-progress"
    elif kind in _ENDS:
        _code, event_code = _ENDS[kind]
        event = msg.event(event_code) or (msg.events[-1] if msg.events else None)
        if cancel:
            enc["status"] = "in-progress"
            enc.get("period", {}).pop("end", None)
            enc.pop("hospitalization", None)
            enc["extension"] = [e for e in enc["extension"] if e.get("url") != EXT_DISCHARGE_STATE]
        else:
            enc["status"] = "finished"
            if event is not None:
                enc.setdefault("period", {})["end"] = _when(event.time)
            disposition = next((c for c in msg.discharged_to if c.system == "2.16.578.1.12.4.1.1.8408"), None)
            state = next((c for c in msg.discharged_to if c is not disposition), None)
            if kind is Logistics.DEATH:
                enc["hospitalization"] = {"dischargeDisposition": {"text": "Død"}}
            elif disposition is not None:
                enc["hospitalization"] = {"dischargeDisposition": f.cc(disposition)}
            if state is not None:
                enc["extension"].append(f.ext(EXT_DISCHARGE_STATE, "CodeableConcept", f.cc(state)))
    elif stored is not None and enc.get("status") == "planned":
        enc["status"] = "in-progress"
    if not enc.get("period"):
        enc.pop("period", None)
    return enc


def _set_output(task: Json, code: str, value_type: str, value: Any) -> None:
    outputs = [o for o in task.get("output") or [] if clock.part_code(o) != code]
    if value is not None:
        outputs.append({"type": clock.part_type(code), f"value{value_type}": value})
    if outputs:
        task["output"] = outputs
    else:
        task.pop("output", None)


def _notice_task(msg: PloMessage, p: Parties, stored: Json | None, key: str, encounter: Json) -> Json | None:
    kind, cancel = msg.logistics, msg.kind is Kind.CANCEL
    ready = msg.event(EventCode.DISCHARGE_READY)
    task: Json | None = copy.deepcopy(stored) if stored is not None else None
    if task is None:
        if ready is None or cancel or kind not in (Logistics.DISCHARGE_READY, Logistics.WITHDRAWN):
            return None
        task = {"resourceType": "Task", "identifier": [{"system": DISCHARGE_READY_SYSTEM, "value": key}]}
        task |= {"status": "requested", "intent": "order", "code": {"coding": [clock.TASK_CODE]}}
        task["description"] = "Utskrivningsklar pasient"
        task["for"] = p.subject
        task["encounter"] = encounter
        if p.sender_ref is not None:
            task["requester"] = p.sender_ref
        if p.receiver_top is not None:
            task["owner"] = f.reference(p.receiver_top, msg.receiver.name)
    task.pop("meta", None)
    task["extension"] = [message_ext(msg), *party_exts(p)]
    task["lastModified"] = f.fhir_datetime(msg.gen_date)
    if kind is Logistics.DISCHARGE_READY:
        if cancel:
            task["status"] = "entered-in-error"
        elif ready is not None:
            notice = _day(ready.time).isoformat()
            if clock.parts(task, "input").get("noticeDate") != notice:  # a new clock
                task.pop("businessStatus", None)
                task.pop("output", None)
            task["status"] = "requested"
            task["authoredOn"] = f.fhir_datetime(msg.issue_date or msg.gen_date)
            task["executionPeriod"] = {"start": notice}
            task["input"] = [{"type": clock.part_type("noticeDate"), "valueDate": notice}]
            if ready.estimated is not None:
                task["input"].append({"type": clock.part_type("estimated"), "valueBoolean": ready.estimated})
            task.pop("statusReason", None)
    elif kind is Logistics.WITHDRAWN:
        withdrawn = msg.event(EventCode.WITHDRAWN)
        if cancel:
            task["status"] = "requested"
            task.pop("statusReason", None)
            _set_output(task, "withdrawn", "Date", None)
        else:
            task["status"] = "cancelled"
            if withdrawn is not None:
                _set_output(task, "withdrawn", "Date", _day(withdrawn.time).isoformat())
                if withdrawn.remark:
                    task["statusReason"] = {"text": withdrawn.remark}
            if "authoredOn" not in task and ready is not None:
                notice = _day(ready.time).isoformat()
                task["input"] = [{"type": clock.part_type("noticeDate"), "valueDate": notice}]
                task["authoredOn"] = f.fhir_datetime(msg.issue_date or msg.gen_date)
    elif kind in _ENDS:
        code, event_code = _ENDS[kind]
        event = msg.event(event_code)
        if cancel:
            if task.get("status") == "completed":
                task["status"] = "requested"
            _set_output(task, code, "Date", None)
        elif event is not None:
            if task.get("status") in ("requested", "accepted", "in-progress", "received", "ready"):
                task["status"] = "completed"
            _set_output(task, code, "Date", _day(event.time).isoformat())
    elif kind is Logistics.ANSWER:
        last = msg.events[-1] if msg.events else None
        if cancel:
            task.pop("businessStatus", None)
            _set_output(task, "answered", "DateTime", None)
            _set_output(task, "canReceiveFrom", "Date", None)
        else:
            code = "can-receive"
            task["businessStatus"] = {
                "coding": [{"system": clock.CLOCK_SYSTEM, "code": code, "display": clock.ANSWERS[code]}]
            }
            _set_output(task, "answered", "DateTime", f.fhir_datetime(msg.issue_date or msg.gen_date))
            if last is not None:
                _set_output(task, "canReceiveFrom", "Date", _day(last.time).isoformat())
    if task.get("status") in ("cancelled", "completed", "entered-in-error"):
        end = task.get("executionPeriod", {})
        ends = clock.parts(task, "output")
        when = next((ends[c] for c in clock.END_PARTS if c in ends), None)
        if when is not None:
            task["executionPeriod"] = {**end, "end": when}
    else:
        task.get("executionPeriod", {}).pop("end", None)
    return task


def _entry(resource: Json, stored: Json | None, full_url: str, system: str, key: str) -> Json:
    if stored is not None:
        entry = intake.update_entry({**resource, "id": stored["id"], "meta": stored["meta"]})
        entry["resource"].pop("meta", None)
        return entry
    url = f"{resource['resourceType']}?{f.search_identifier({'system': system, 'value': key})}"
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "PUT", "url": url}}


def _death(msg: PloMessage, entries: list[Json], patient: Json | None) -> None:
    """Orientering om dødsfall sets `Patient.deceasedDateTime` (on the new Patient, or on the stored one
    with If-Match); its Kansellering takes that date away again."""
    if msg.logistics is not Logistics.DEATH or (event := msg.event(EventCode.DEAD)) is None:
        return
    when = _when(event.time)
    if patient is None:
        if msg.kind is not Kind.CANCEL:
            new = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
            new["deceasedDateTime"] = when
        return
    changed = {k: v for k, v in patient.items() if k not in ("meta", "deceasedBoolean")}
    if msg.kind is Kind.CANCEL:
        if patient.get("deceasedDateTime") != when:
            return
        changed.pop("deceasedDateTime")
    elif patient.get("deceasedDateTime") == when:
        return
    else:
        changed["deceasedDateTime"] = when
    entry = intake.update_entry({**changed, "meta": patient["meta"]})
    entry["resource"].pop("meta", None)
    entries.append(entry)


def logistics_bundle(
    msg: PloMessage, encounter: Json | None, task: Json | None, patient: Json | None = None
) -> tuple[Json, Anchor]:
    """The transaction of a Pasientlogistikk message, and what its record is about (the Task when there is
    one, else the Encounter)."""
    p = parties(msg, record_key(msg))
    key = identifier_value(encounter, STAY_SYSTEM) or stay_key(msg) or fallback_stay_key(msg)
    if msg.logistics is Logistics.ANSWER and task is None:
        raise KithError(AppRecError.OTHER, "the answer names no discharge-ready notice held here")
    entries = list(p.b.entries)
    _death(msg, entries, patient)
    enc_url = p.b.url("encounter")
    enc_ref = f.reference(enc_url) if encounter is None else {"reference": f"Encounter/{encounter['id']}"}
    enc = _encounter(msg, p, encounter, key)
    if enc is not None and not (msg.logistics is Logistics.ANSWER and encounter is None):
        entries.append(_entry(enc, encounter, enc_url, STAY_SYSTEM, key))
    new_task = _notice_task(msg, p, task, key, enc_ref)
    about: str = enc_ref["reference"]
    if new_task is not None:
        task_url = p.b.url("discharge-ready")
        entries.append(_entry(new_task, task, task_url, DISCHARGE_READY_SYSTEM, key))
        about = task_url if task is None else f"Task/{task['id']}"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    recipients = [r] if (r := p.receiver_ref) is not None else []
    return bundle, Anchor(about, p.subject, p.sender_ref, tuple(recipients))
