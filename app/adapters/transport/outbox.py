"""The outbox of KITH messages, as the transports see it: pure functions over the outgoing `Communication`
records (intake.outgoing_message) that say what to publish, when, and how a handover is recorded.

A record stays `preparation` until its receiver's AppRec comes back through the intake (which makes it
`completed` or `not-done`). Handing it to the broker sets `sent`; a record whose AppRec has not come after
the resend interval is published again with the same MsgId, so the receiver's MsgId idempotency makes the
repeat harmless (at-least-once).
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


def handed_over(record: Json, at: datetime) -> Json:
    """The record once the broker has confirmed it: `sent` is the handover time; still `preparation`."""
    return {**record, "sent": f.fhir_datetime(at)}
