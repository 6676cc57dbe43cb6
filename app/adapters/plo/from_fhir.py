"""FHIR -> the PLO model (pure), everything referred to looked up by `resolve`: a Pasientlogistikk message
back from the stay (Encounter) and its discharge-ready notice (Task) the intake stored
(`logistics_from_resources`, its envelope by `_common.envelope_from`), and the message a write on FHIR
calls for (`hospital_message` from a notice, `stay_message` from a stay: admission, discharge, death;
`municipality_answer`; used by `outgoing.py`).

The resources keep what the XML said: `ext:plo-message` (version, family, kind, MsgId, conversation,
MsgHead type, GenDate, IssueDate, the logistics element), `kith-party` (sender and receiver: the deepest
Organization and the PractitionerRoles) and `ext:plo-event` (every TidsfestetHendelse); `UtskrevetTil` is
`hospitalization.dischargeDisposition` (UtTil) and `ext:plo-discharge-state` (Uttilstand). The resource
that carries the latest message (the later GenDate; the Encounter on a tie) is the one read.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Coded, Organisation, OriginalReference
from app.adapters.plo import clock
from app.adapters.plo._common import EXT_PLO, SD_EVENT, envelope_from, ext_part
from app.adapters.plo.logistics_fhir import EXT_DISCHARGE_STATE
from app.adapters.plo.model import (
    MESSAGE_TYPES,
    Event,
    EventCode,
    Family,
    Kind,
    Logistics,
    PloMessage,
    PloVersion,
)

Json = dict[str, Any]


def _when(value: Any) -> datetime | date | None:
    """An event time as written: a date stays a date, a time comes back as KITH's local time."""
    if not isinstance(value, str) or not value:
        return None
    return f.from_fhir_datetime(value) if "T" in value else date.fromisoformat(value)


def _event(ext: Json) -> Event:
    when = _when(ext_part(ext, "time", "DateTime"))
    if when is None:
        raise KithError(AppRecError.NOT_VALID, "a kept PLO event without its time")
    return Event(
        code=f.opt_coded(ext_part(ext, "code", "CodeableConcept")),
        time=when,
        estimated=ext_part(ext, "estimated", "Boolean"),
        description=ext_part(ext, "description", "String"),
        remark=ext_part(ext, "remark", "String"),
    )


def _generated(resource: Json | None) -> datetime | None:
    ext = next(iter(f.exts(resource, EXT_PLO)), None)
    return f.from_fhir_datetime(ext_part(ext, "generated", "DateTime"))


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
    logistics = ext_part(f.exts(source, EXT_PLO)[0], "logistics", "Code")
    if logistics is None:
        raise KithError(AppRecError.NOT_VALID, "the kept PLO message names no logistics element")
    subject = source.get("for") if source.get("resourceType") == "Task" else source.get("subject")
    events = f.exts(encounter, SD_EVENT) if source is encounter else []
    return replace(
        envelope_from(source, subject, resolve),
        logistics=Logistics(logistics),
        events=tuple(_event(e) for e in events),
        discharged_to=_discharged_to(encounter) if source is encounter else (),
    )


# --- written on FHIR: what a hospital or a municipality on FHIR wrote, as the message a legacy system gets --


def _native_common(
    logistics: Logistics, subject: Any, resolve: ff.Resolve, msg_id: str, generated: datetime
) -> PloMessage:
    ref = f.ref_of(subject)
    patient = None if ref is None else resolve(ref)
    return PloMessage(
        version=PloVersion.V1_6,
        family=Family.LOGISTICS,
        kind=Kind.NEW,
        msg_id=msg_id,
        msg_type=MESSAGE_TYPES[logistics],
        gen_date=generated,
        sender=Organisation(),
        receiver=Organisation(),
        patient=None if patient is None else ff._patient(patient, None, True),
        issue_date=generated,
        logistics=logistics,
    )


def _admitted(encounter: Json | None) -> tuple[Event, ...]:
    start = f.from_fhir_datetime((encounter or {}).get("period", {}).get("start"))
    return () if start is None else (Event(EventCode.ADMITTED.coded, start, False),)


def _time(value: Any) -> datetime | date | None:
    """A FHIR date or dateTime as an event time (a date stays a date)."""
    return _when(value[:10] if isinstance(value, str) and "T" not in value else value)


def hospital_message(
    logistics: Logistics,
    task: Json,
    encounter: Json | None,
    resolve: ff.Resolve,
    *,
    msg_id: str,
    generated: datetime,
    own: Organisation,
) -> PloMessage:
    """A notice (MeldingUtskrivningsklarPasient), its withdrawal (Avmelding...) or the discharge
    (MeldingOmUtskrevetPasient) of a hospital on FHIR, from its notice Task (owner = the municipality,
    requester = the hospital, else `own`) and the stay. Missing parts are left out: the builder and the
    XSD refuse what a message needs."""
    if logistics in STAY_MESSAGES:
        return stay_message(
            logistics,
            encounter or {},
            resolve,
            sender=task.get("requester"),
            receiver=f.ref_of(task.get("owner")),
            msg_id=msg_id,
            generated=generated,
            own=own,
        )
    msg = _native_common(logistics, task.get("for"), resolve, msg_id, generated)
    sender = ff._native_party(task["requester"], resolve) if task.get("requester") else own
    receiver = ff._party(f.ref_of(task.get("owner")), [], resolve)
    inputs, outputs = clock.parts(task, "input"), clock.parts(task, "output")
    notice = f.from_fhir_date(inputs.get("noticeDate"))
    ready = (
        () if notice is None else (Event(EventCode.DISCHARGE_READY.coded, notice, inputs.get("estimated")),)
    )
    events = _admitted(encounter) + ready
    if logistics is Logistics.WITHDRAWN:
        withdrawn = f.from_fhir_date(outputs.get("withdrawn"))
        remark = (task.get("statusReason") or {}).get("text")
        if withdrawn is not None:
            events += (Event(EventCode.WITHDRAWN.coded, withdrawn, False, remark=remark),)
    return replace(msg, sender=sender, receiver=receiver, events=events)


STAY_MESSAGES = (Logistics.ADMITTED, Logistics.DISCHARGED, Logistics.DEATH)


def stay_message(
    logistics: Logistics,
    encounter: Json,
    resolve: ff.Resolve,
    *,
    sender: Json | None,
    receiver: str | None,
    msg_id: str,
    generated: datetime,
    own: Organisation,
    died_at: str | None = None,
) -> PloMessage:
    """What a stay written on FHIR tells the municipality (`receiver`, an Organization reference):
    MeldingInnlagtPasient (Hendelsekode 1 at `period.start`), MeldingOmUtskrevetPasient (2 at `period.end`,
    UtskrevetTil from the disposition) or OrienteringOmDod (13 at `died_at`, else `period.end`). The
    sender is `sender` (the notice's requester), else the stay's `serviceProvider`, else `own`."""
    msg = _native_common(logistics, encounter.get("subject"), resolve, msg_id, generated)
    by = sender or encounter.get("serviceProvider")
    period = encounter.get("period") or {}
    events: tuple[Event, ...] = ()
    discharged_to: tuple[Coded, ...] = ()
    if logistics is Logistics.ADMITTED:
        events = _admitted(encounter)
    elif logistics is Logistics.DISCHARGED:
        end = _time(period.get("end"))
        events = () if end is None else (Event(EventCode.DISCHARGED.coded, end, False),)
        discharged_to = _discharged_to(encounter)
    elif logistics is Logistics.DEATH:
        when = _time(died_at or period.get("end"))
        events = () if when is None else (Event(EventCode.DEAD.coded, when, False),)
    return replace(
        msg,
        sender=ff._native_party(by, resolve) if by else own,
        receiver=ff._party(receiver, [], resolve),
        events=events,
        discharged_to=discharged_to,
    )


def municipality_answer(task: Json, resolve: ff.Resolve, *, msg_id: str, generated: datetime) -> PloMessage:
    """The municipality's answer written on a notice received from a hospital (`businessStatus`
    can-receive / cannot-receive, output `canReceiveFrom`) as the 2.0 TilbakemeldingUtskrivningsklarPasient
    back to that hospital, in the notice's conversation. Volven 9121 has no confirmed code for the answer:
    the event carries the day and says the answer in words."""
    received = next(iter(f.exts(task, EXT_PLO)), None)
    msg = _native_common(Logistics.ANSWER, task.get("for"), resolve, msg_id, generated)
    answer = clock.answer_code(task)
    outputs = clock.parts(task, "output")
    when = f.from_fhir_date(outputs.get("canReceiveFrom")) or generated
    text = clock.ANSWERS.get(answer or "", "")
    remark = (task.get("statusReason") or {}).get("text")
    parent = ext_part(received, "msgId", "String")
    conversation = ext_part(received, "conversationId", "String") or parent
    return replace(
        msg,
        version=PloVersion.V2_0,
        sender=ff._party_from(task, "receiver", resolve) or Organisation(),
        receiver=ff._party_from(task, "sender", resolve) or Organisation(),
        conversation=None if parent is None else OriginalReference(parent, conversation or parent),
        events=(Event(None, when, False, description=text, remark=remark),),
    )
