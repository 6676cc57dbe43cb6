"""FHIR -> the PLO model (pure): a Pasientlogistikk message back from the stay (Encounter) and its
discharge-ready notice (Task) the intake stored, everything they refer to looked up by `resolve`.

The resources keep what the XML said: `ext:plo-message` (version, family, kind, MsgId, conversation,
MsgHead type, GenDate, IssueDate, the logistics element), `kith-party` (sender and receiver: the deepest
Organization and the PractitionerRoles) and `ext:plo-event` (every TidsfestetHendelse); `UtskrevetTil` is
`hospitalization.dischargeDisposition` (UtTil) and `ext:plo-discharge-state` (Uttilstand). The resource
that carries the latest message (the later GenDate; the Encounter on a tie) is the one read.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded, Organisation, OriginalReference
from app.adapters.plo._common import EXT_PLO, SD_EVENT
from app.adapters.plo.logistics_fhir import EXT_DISCHARGE_STATE
from app.adapters.plo.model import Event, Family, Kind, Logistics, PloMessage, PloVersion

Json = dict[str, Any]


def _part(ext: Any, name: str, value_type: str) -> Any:
    return next(
        (e.get(f"value{value_type}") for e in (ext or {}).get("extension", []) if e.get("url") == name), None
    )


def _when(value: Any) -> datetime | date | None:
    """An event time as written: a date stays a date, a time comes back as KITH's local time."""
    if not isinstance(value, str) or not value:
        return None
    return f.from_fhir_datetime(value) if "T" in value else date.fromisoformat(value)


def _event(ext: Json) -> Event:
    when = _when(_part(ext, "time", "DateTime"))
    if when is None:
        raise KithError(AppRecError.NOT_VALID, "a kept PLO event without its time")
    return Event(
        code=f.opt_coded(_part(ext, "code", "CodeableConcept")),
        time=when,
        estimated=_part(ext, "estimated", "Boolean"),
        description=_part(ext, "description", "String"),
        remark=_part(ext, "remark", "String"),
    )


def _generated(resource: Json | None) -> datetime | None:
    ext = next(iter(f.exts(resource, EXT_PLO)), None)
    return f.from_fhir_datetime(_part(ext, "generated", "DateTime"))


def _latest(encounter: Json | None, task: Json | None) -> Json:
    """The resource the last message wrote (the answer of 2.0 may write only the notice)."""
    candidates = [r for r in (encounter, task) if r is not None and f.exts(r, EXT_PLO)]
    if not candidates:
        raise KithError(AppRecError.NOT_VALID, "no PLO message is kept on the stay or the notice")
    return max(candidates, key=lambda r: _generated(r) or datetime.min)


def _discharged_to(encounter: Json | None) -> tuple[Coded, ...]:
    """UtskrevetTil in the XSD's order: Uttilstand (Volven 8431), then UtTil (8408)."""
    state = f.opt_coded(f.ext_value(encounter, EXT_DISCHARGE_STATE, "CodeableConcept"))
    disposition = (encounter or {}).get("hospitalization", {}).get("dischargeDisposition")
    to = f.opt_coded(disposition) if disposition and disposition.get("coding") else None
    return tuple(c for c in (state, to) if c is not None)


def logistics_from_resources(encounter: Json | None, task: Json | None, resolve: ff.Resolve) -> PloMessage:
    """The last Pasientlogistikk message kept on a stay and its notice, as the model."""
    source = _latest(encounter, task)
    ext = f.exts(source, EXT_PLO)[0]
    logistics = _part(ext, "logistics", "Code")
    if logistics is None:
        raise KithError(AppRecError.NOT_VALID, "the kept PLO message names no logistics element")
    msg_id = _part(ext, "msgId", "String")
    conversation_id = _part(ext, "conversationId", "String")
    parent_id = _part(ext, "parentId", "String")
    conversation = None
    if parent_id is not None and conversation_id is not None:
        conversation = OriginalReference(parent_id=parent_id, conversation_id=conversation_id)
    generated = _generated(source)
    if msg_id is None or generated is None:
        raise KithError(AppRecError.NOT_VALID, "the kept PLO message has no MsgId or GenDate")
    subject = f.ref_of(source.get("for") if source.get("resourceType") == "Task" else source.get("subject"))
    patient = None if subject is None else resolve(subject)
    events = f.exts(encounter, SD_EVENT) if source is encounter else []
    return PloMessage(
        version=PloVersion(_part(ext, "version", "Code")),
        family=Family(_part(ext, "family", "Code")),
        kind=Kind(_part(ext, "kind", "Code")),
        msg_id=msg_id,
        msg_type=f.coded(_part(ext, "messageType", "CodeableConcept")),
        gen_date=generated,
        sender=ff._party_from(source, "sender", resolve) or Organisation(),
        receiver=ff._party_from(source, "receiver", resolve) or Organisation(),
        patient=None if patient is None else ff._patient(patient, None, False),
        issue_date=f.from_fhir_datetime(_part(ext, "issued", "DateTime")),
        conversation=conversation,
        logistics=Logistics(logistics),
        events=tuple(_event(e) for e in events),
        discharged_to=_discharged_to(encounter) if source is encounter else (),
    )
