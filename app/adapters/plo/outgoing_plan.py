"""Which Pasientlogistikk messages a write on FHIR calls for (pure): what the resource says now, what it
said before the write, and what was sent about it before.

A resource written on FHIR (the stay, or its discharge-ready notice) *says* some of the messages: each
`Logistics` maps to a key (what makes a new one: the notice date for a notice, a constant for the
others) or to None (it no longer says it: a discharge taken back); a message it neither says nor unsays is
left alone. Each message sent is a conversation (its Ny, then Endringer and perhaps a Kansellering,
named by ConversationRef); the latest conversation of each message is the one a correction changes:

- said, and its conversation is live (not cancelled): an Endring (M), which the hook drops when the
  message reads the same as the last one sent;
- said, not live, and said differently (or not at all) before the write: a Ny (N);
- unsaid, and live: a Kansellering (C) of that conversation;
- the resource `entered-in-error`: a Kansellering of every live conversation, the latest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.adapters.kith.model import Sent as SentMessage
from app.adapters.plo import clock
from app.adapters.plo.model import Kind, Logistics, PloMessage

Json = dict[str, Any]
CANCELLED = "entered-in-error"
ADMITTED_STATES = ("in-progress", "onleave", "finished")
OPEN_STATES = ("in-progress", "onleave")
DEATH_DISPOSITIONS = {  # hospitalization.dischargeDisposition that says the patient died
    ("http://terminology.hl7.org/CodeSystem/discharge-disposition", "exp"),
}
DEATH_TEXT = "død"  # as the intake writes an OrienteringOmDod (`{"text": "Død"}`)


# What the messages read of a stay and of a notice: a write that changes none of it sends nothing.
STAY_FIELDS = ("status", "class", "period", "hospitalization", "subject", "serviceProvider", "extension")
TASK_FIELDS = ("status", "code", "input", "output", "statusReason", "for", "encounter", "owner", "requester")


def changed(now: Json, before: Json | None, fields: tuple[str, ...]) -> bool:
    return before is None or any(now.get(k) != before.get(k) for k in fields)


# One message sent about the resource: its record, the message (read back) and its XML as sent.
Sent = SentMessage[PloMessage]


@dataclass(frozen=True)
class Conversation:
    logistics: Logistics
    first: Sent
    last: Sent
    order: int  # position of its last message in the chain

    @property
    def live(self) -> bool:
        return self.last.message.kind is not Kind.CANCEL


@dataclass(frozen=True)
class Step:
    logistics: Logistics
    kind: Kind
    conversation: Conversation | None = None  # the one an Endring or Kansellering belongs to


def conversations(sent: list[Sent]) -> dict[Logistics, Conversation]:
    """The latest conversation of each message, from the messages in the order sent."""
    by_id: dict[str, Conversation] = {}
    latest: dict[Logistics, str] = {}
    for order, item in enumerate(sent):
        msg = item.message
        if msg.logistics is None:
            continue
        conv_id = msg.conversation_id
        known = by_id.get(conv_id)
        by_id[conv_id] = Conversation(msg.logistics, known.first if known else item, item, order)
        if known is None:
            latest[msg.logistics] = conv_id
    return {logistics: by_id[conv_id] for logistics, conv_id in latest.items()}


def plan(
    now: Mapping[Logistics, str | None],
    before: Mapping[Logistics, str | None],
    sent: Mapping[Logistics, Conversation],
    in_error: bool,
) -> list[Step]:
    """The messages to send, Kanselleringer first (the latest conversation first), then the rest."""
    if in_error:
        open_ = sorted((c for c in sent.values() if c.live), key=lambda c: -c.order)
        return [Step(c.logistics, Kind.CANCEL, c) for c in open_]
    cancels: list[Step] = []
    others: list[Step] = []
    for logistics, key in now.items():
        conv = sent.get(logistics)
        live = conv is not None and conv.live
        if key is None:
            if live:
                cancels.append(Step(logistics, Kind.CANCEL, conv))
        elif live:
            others.append(Step(logistics, Kind.CHANGE, conv))
        elif before.get(logistics) != key:
            others.append(Step(logistics, Kind.NEW))
    cancels.sort(key=lambda s: -(s.conversation.order if s.conversation else 0))
    return cancels + others


def task_says(task: Json | None) -> dict[Logistics, str | None]:
    """A notice says itself (keyed by its notice date) unless in error; withdrawn, the withdrawal too; back
    to `requested`, no withdrawal."""
    if task is None or task.get("status") == CANCELLED:
        return {}
    notice = clock.parts(task, "input").get("noticeDate")
    if notice is None:
        return {}
    says: dict[Logistics, str | None] = {Logistics.DISCHARGE_READY: str(notice)}
    withdrawn = clock.parts(task, "output").get("withdrawn")
    if task.get("status") == "cancelled" and withdrawn is not None:
        says[Logistics.WITHDRAWN] = "withdrawn"
    elif task.get("status") == "requested":
        says[Logistics.WITHDRAWN] = None
    return says


def died(encounter: Json) -> bool:
    """A stay finished with the death disposition."""
    disposition = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    codings = disposition.get("coding") or []
    coded = any((c.get("system"), c.get("code")) in DEATH_DISPOSITIONS for c in codings)
    return encounter.get("status") == "finished" and (
        coded or str(disposition.get("text", "")).strip().lower() == DEATH_TEXT
    )


def stay_says(encounter: Json | None, deceased: str | None) -> dict[Logistics, str | None]:
    """A stay says its admission once in progress; finished, its discharge, or the death when it finished
    with the death disposition or the patient died (`deceased`: Patient.deceasedDateTime) while in it;
    open again, neither."""
    if encounter is None or encounter.get("status") == CANCELLED:
        return {}
    status = encounter.get("status")
    says: dict[Logistics, str | None] = {}
    if status in ADMITTED_STATES and (encounter.get("period") or {}).get("start"):
        says[Logistics.ADMITTED] = "admitted"
    dead = died(encounter) or (deceased is not None and status in OPEN_STATES)
    if dead:
        says |= {Logistics.DEATH: "dead", Logistics.DISCHARGED: None}
    elif status == "finished":
        says |= {Logistics.DISCHARGED: "discharged", Logistics.DEATH: None}
    elif status in OPEN_STATES:
        says |= {Logistics.DISCHARGED: None, Logistics.DEATH: None}
    return says


def death_time(encounter: Json, patient: Json | None) -> str | None:
    """When the patient died: Patient.deceasedDateTime, else the end of the stay."""
    deceased = (patient or {}).get("deceasedDateTime")
    return deceased if isinstance(deceased, str) else (encounter.get("period") or {}).get("end")
