"""The outbox of KITH messages, as the transports see it: pure functions over the outgoing `Communication`
records (intake.outgoing_message) that say what to publish, when, and how a handover is recorded.

A record stays `preparation` until its receiver's AppRec comes back through the intake (which makes it
`completed` or `not-done`). Each handover is claimed on the record before it is published: `sent` is the
time of the latest attempt and the `kith-send-attempts` extension counts them, written with If-Match so
that of several processes looking at once only one publishes. A record whose AppRec has not come after the
resend interval is published again with the same MsgId, so the receiver's MsgId idempotency makes the
repeat harmless (at-least-once); after the last allowed attempt it is given up (`not-done`) instead.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.intake import (
    APPREC_TITLE,
    MESSAGE_CATEGORY_SYSTEM,
    MESSAGE_TYPE_SYSTEM,
    OUTGOING_CATEGORY,
    SENT_MSG_ID_SYSTEM,
)

Json = dict[str, Any]
# Handovers to the broker so far (valueInteger); a record sent before it existed counts as sent once.
SEND_ATTEMPTS_EXTENSION = f"{f.SD}/kith-send-attempts"
# Waiting to be sent, or sent with no AppRec back yet.
PENDING_CRITERIA = [
    ("category", f"{MESSAGE_CATEGORY_SYSTEM}|{OUTGOING_CATEGORY['code']}"),
    ("status", "preparation"),
]


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: its MsgId (the AMQP message-id too), its Volven 8279 type and the XML."""

    msg_id: str
    msg_type: str
    xml: bytes


def _parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_new(record: Json) -> bool:
    """An outgoing message never handed over (the transport is woken for it when its write commits)."""
    outgoing_category = any(
        c.get("system") == MESSAGE_CATEGORY_SYSTEM and c.get("code") == OUTGOING_CATEGORY["code"]
        for cc in record.get("category", [])
        for c in cc.get("coding", [])
    )
    return outgoing_category and record.get("status") == "preparation" and "sent" not in record


def attempts(record: Json) -> int:
    """How often the record has been handed to the broker."""
    counted = f.ext_value(record, SEND_ATTEMPTS_EXTENSION, "Integer")
    if isinstance(counted, int):
        return counted
    return 0 if record.get("sent") is None else 1


def due(record: Json, now: datetime, resend: timedelta) -> bool:
    """Never handed over, or handed over `resend` ago without an AppRec."""
    if record.get("status") != "preparation":
        return False
    sent = record.get("sent")
    return sent is None or _parse_instant(sent) <= now - resend


def outgoing(record: Json) -> Outgoing | None:
    """The message a record holds; None for a record that is not an outgoing message (nothing to send)."""
    msg_id = next(
        (i["value"] for i in record.get("identifier", []) if i.get("system") == SENT_MSG_ID_SYSTEM), None
    )
    payload = next(
        (
            p["contentAttachment"]
            for p in record.get("payload", [])
            if p.get("contentAttachment", {}).get("title") != APPREC_TITLE
            and "data" in p.get("contentAttachment", {})
        ),
        None,
    )
    if msg_id is None or payload is None:
        return None
    codes = [
        c.get("code")
        for c in record.get("topic", {}).get("coding", [])
        if c.get("system") == MESSAGE_TYPE_SYSTEM
    ]
    return Outgoing(msg_id, codes[0] if codes and codes[0] else "", base64.b64decode(payload["data"]))


def exhausted(record: Json, max_sends: int) -> bool:
    """Sent as often as allowed: a due record is then given up, not published again."""
    return attempts(record) >= max_sends


def claimed(record: Json, at: datetime) -> Json:
    """The record as one more handover starts: `sent` is its time and the attempt is counted; still
    `preparation`."""
    extensions = [e for e in record.get("extension", []) if e.get("url") != SEND_ATTEMPTS_EXTENSION]
    extensions.append(f.ext(SEND_ATTEMPTS_EXTENSION, "Integer", attempts(record) + 1))
    return {**record, "sent": f.fhir_datetime(at), "extension": extensions}


def given_up(record: Json) -> Json:
    """The record once its last allowed attempt went unanswered: `not-done`, saying so, for an operator to
    follow up (the message is not published again; an AppRec that still comes completes it)."""
    reason = f"Ingen applikasjonskvittering mottatt etter {attempts(record)} sendeforsøk"
    return {**record, "status": "not-done", "statusReason": {"text": reason}}
