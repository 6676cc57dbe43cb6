"""What a received Dialogmelding changes, read through the engine with the caller's context (so the access
policy and the audit apply): the transaction (dialog_fhir) threaded to the stored records of the messages
it answers, and what its record is about.

The conversation is MsgHead's ConversationRef: RefToParent names the message answered, RefToConversation
the conversation's first message. Either may be a message received here (its record has the MsgId as
`kith-msg-id-received`) or one sent from here (`kith-msg-id-sent`: a referral status, a Dialogmelding), so
an answer to our own outgoing message is linked to it. A message answering one not known here is stored
all the same, with the conversation's identifier only; so is one whose RefToParent names a message about
another patient (no national identifier in common): a conversation is never threaded across patients.
"""

from __future__ import annotations

import logging
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import intake
from app.adapters.kith.dialog_fhir import dialogmelding_to_bundle, link_to_conversation
from app.adapters.kith.dialogmelding import Dialogmelding
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.search.values import escape_value

Json = dict[str, Any]
log = logging.getLogger(__name__)


async def message_record(engine: Engine, ctx: RequestContext, msg_id: str) -> Json | None:
    """The record of a message received here or sent from here, by its MsgId."""
    value = escape_value(msg_id)
    query = [("identifier", f"{intake.RECEIVED_MSG_ID_SYSTEM}|{value},{intake.SENT_MSG_ID_SYSTEM}|{value}")]
    found = await engine.search(ctx, "Communication", query, 1)
    return found[0] if found else None


async def _same_patient(
    engine: Engine, ctx: RequestContext, record: Json | None, message: Dialogmelding
) -> bool:
    """Whether a stored record is about the message's patient (one national identifier in common), or about
    no patient: a conversation is never threaded across patients."""
    subject = f.ref_of((record or {}).get("subject"))
    if record is None or subject is None or message.patient is None:
        return True
    stored = await engine.read_resource(ctx, subject)
    keys = {
        (i.get("system"), i.get("value")) for i in (stored or {}).get("identifier", []) if i.get("system")
    }
    ours = {
        (i.get("system"), i.get("value"))
        for i in map(f.identifier, message.patient.idents)
        if i.get("system")
    }
    return bool(keys & ours)


async def changes(engine: Engine, ctx: RequestContext, message: Dialogmelding) -> tuple[Json, intake.Anchor]:
    bundle, anchor = dialogmelding_to_bundle(message)
    ref = message.referral
    if ref is not None:
        parent = await message_record(engine, ctx, ref.parent_id)
        first = parent if ref.conversation_id == ref.parent_id else None
        if first is None:
            first = await message_record(engine, ctx, ref.conversation_id)
        if not await _same_patient(engine, ctx, parent, message):
            log.warning("Dialogmelding answers a message about another patient: not threaded to it")
            parent = None
        if not await _same_patient(engine, ctx, first, message):
            first = None
        link_to_conversation(bundle, parent, first)
    return bundle, anchor
