"""Outgoing Dialogmelding: a Communication written on FHIR for a receiver that is not on FHIR becomes the
Dialogmelding 1.1 it receives.

Which Communications: created on FHIR (not from a KITH message: no `kith-dialog` extension), status
`completed`, with a category of `http://helsebro.no/fhir/CodeSystem/kith-dialog` `answer`, `note` or
`deviation`, and a recipient that is an Organization with a HER-id. The Dialogmelding (MsgHead type
DIALOG_SVAR, DIALOG_NOTAT or DIALOG_AVVIK) is stored as an outgoing `Communication` in the write's own unit
of work (status `preparation`, category `outgoing`, `basedOn` and `about` the Communication, the XML as
payload), for the gateway to collect and send like the referral status messages; the receiver's AppRec posted
to `/$kith-message` marks it delivered. When the Communication answers (`inResponseTo`) a Dialogmelding
received here, or a message sent or received, the ConversationRef names that message. One that cannot be a
Dialogmelding (no patient with a fødselsnummer or another patient id) is refused with 422.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.dialog_fhir import (
    EXT_DIALOG,
    SENDABLE_KINDS,
    dialog_kind,
    dialogmelding_from_communication,
    her_recipient,
)
from app.adapters.kith.dialogmelding import build_dialogmelding
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Organisation
from app.adapters.kith.outgoing import store_outgoing
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xsd import XsdValidator
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.referrals.taskjson import OSLO
from app.store.repository import at_unit_end

Json = dict[str, Any]
TITLE = "Dialogmelding"
_UNIT_KEY = "kith-dialog-outgoing"
OUTGOING = SystemPrincipal(
    "kith-dialog-outgoing", "a Communication written on FHIR is sent as a Dialogmelding"
)


def to_send(resource: Json | None) -> bool:
    """A Communication of a dialogue kind written on FHIR, to an Organization (its HER-id is checked later)."""
    if resource is None or resource.get("status") != "completed" or f.exts(resource, EXT_DIALOG):
        return False
    recipients = [f.ref_of(r) or "" for r in resource.get("recipient", [])]
    return dialog_kind(resource) in SENDABLE_KINDS and any(r.startswith("Organization/") for r in recipients)


@dataclass(frozen=True)
class _Pending:
    ctx: RequestContext
    communication: Json  # as stored, with its id


@dataclass(frozen=True)
class OutgoingDialog:
    engine: Engine
    validator: XsdValidator | None
    own: Organisation  # the sender when the Communication names none

    async def after_write(self, event: WriteEvent) -> None:
        if event.res_type != "Communication" or event.interaction != "create" or not to_send(event.resource):
            return
        assert event.resource is not None
        ctx = RequestContext(event.ctx.base, OUTGOING, event.ctx.request_id)
        await at_unit_end(
            event.conn,
            _UNIT_KEY,
            self._send_all,
            [
                _Pending(ctx, {**event.resource, "id": event.res_id}),
            ],
        )

    async def _send_all(self, conn: AsyncConnection, pending: list[_Pending]) -> None:
        for item in pending:
            await self._send(conn, item.ctx, item.communication)

    async def _send(self, conn: AsyncConnection, ctx: RequestContext, comm: Json) -> None:
        known = await resolve_all(self.engine, ctx, [comm], conn=conn)
        recipient = her_recipient(comm, known.get)
        if recipient is None:
            return  # the receiver is on FHIR (no HER-id): nothing to send
        generated = datetime.now(OSLO).replace(tzinfo=None, microsecond=0)  # KITH times: local, no offset
        try:
            msg = dialogmelding_from_communication(
                comm, known.get, msg_id=str(uuid.uuid4()), generated=generated, own=self.own
            )
            root = build_dialogmelding(msg)
        except KithError as error:
            raise FhirError(
                Category.UNPROCESSABLE,
                f"Communication/{comm['id']} is for {recipient} (a HER-id: sent as a Dialogmelding) and cannot "
                f"be one: {error.message}",
                "business-rule",
            ) from None
        await store_outgoing(
            self.engine,
            ctx,
            conn,
            self.validator,
            root,
            msg_type=msg.msg_type,
            msg_id=msg.msg_id,
            title=TITLE,
            made_from=f"Communication/{comm['id']}",
            subject=comm.get("subject"),
            sender=comm.get("sender"),
            recipients=[{"reference": recipient}],
        )


def install(engine: Engine, validator: XsdValidator | None, own: Organisation) -> OutgoingDialog:
    outgoing = OutgoingDialog(engine, validator, own)
    engine.svc.hooks.after_write.add(Stage.DERIVE, outgoing.after_write)
    return outgoing
