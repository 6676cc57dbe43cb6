"""Outgoing Epikrise: a discharge summary written on FHIR by a hospital on FHIR becomes the Epikrise 1.2 that
a GP's legacy system receives, and so do its later changes and its cancellation.

Which Compositions: written on FHIR (no `kith-epikrise` extension: not itself received), `type` LOINC 18842-5
(Discharge summary), and the extension `http://helsebro.no/fhir/StructureDefinition/kith-recipient`
(valueReference) naming the GP's Organization, which has a HER-id. Its subject, encounter, custodian (the
sender, else `KITH_RECEIVER_NAME` / `KITH_RECEIVER_HER_ID`), authors and the resources in its sections are
read with the write's own unit of work (`app.adapters.epikrise.from_fhir`), and the Epikrise is stored as an
outgoing `Communication` (status `preparation`, `basedOn` and `about` the Composition, the XML as payload)
for the gateway, batched to the end of the unit of work like the Dialogmelding.

What is sent, by the Composition's status and what was sent for it before (its outgoing records, found by
`basedOn`; each later record is `partOf` the one before it, so they are ordered however fast they come):
`final`/`amended` with nothing sent (or after a cancellation) → ServType N; `final`/`amended` again with
content the last message did not have → M (Endring); `entered-in-error` after an N or M → C (Kansellering).
Every one repeats the ServProvId (the Composition's id), which is how an Epikrise names the document it
changes. An update that changes nothing the Epikrise carries sends nothing. A recipient without a HER-id
sends nothing; a Composition that cannot be an Epikrise (no patient identifier, XSD-invalid) is refused with
422.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.epikrise.build import build_epikrise
from app.adapters.epikrise.from_fhir import epikrise_from_resources
from app.adapters.epikrise.model import Epikrise
from app.adapters.epikrise.parse import parse_epikrise
from app.adapters.epikrise.to_fhir import DISCHARGE_SUMMARY, EXT_MESSAGE, EXT_RECIPIENT
from app.adapters.kith import _fhir_common as f
from app.adapters.kith._henv_common import check_patient
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import MessageKind, Organisation, Sent
from app.adapters.kith.outgoing import (
    CANCELLED,
    SENT,
    PendingComposition,
    read_sent,
    send_composition_at_unit_end,
    sent_about,
    store_outgoing,
)
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.referrals.taskjson import OSLO

Json = dict[str, Any]
TITLE = "Epikrise"
_UNIT_KEY = "kith-epikrise-outgoing"
OUTGOING = SystemPrincipal(
    "kith-epikrise-outgoing", "a discharge summary written on FHIR is sent as an Epikrise"
)


def to_send(resource: Json | None) -> bool:
    """A discharge summary written on FHIR, final or amended, for an Organization (HER-id checked later)."""
    return resource is not None and resource.get("status") in SENT and _ours(resource)


def _ours(resource: Json | None) -> bool:
    """A discharge summary written on FHIR (not received) for an Organization."""
    if resource is None or f.exts(resource, EXT_MESSAGE):
        return False
    codings = (resource.get("type") or {}).get("coding") or []
    if not any(
        c.get("system") == DISCHARGE_SUMMARY["system"] and c.get("code") == DISCHARGE_SUMMARY["code"]
        for c in codings
    ):
        return False
    recipient = f.ref_of(f.ext_value(resource, EXT_RECIPIENT, "Reference")) or ""
    return recipient.startswith("Organization/")


@dataclass(frozen=True)
class OutgoingEpikrise:
    engine: Engine
    validator: XsdValidator | None
    own: Organisation  # the sender when the Composition has no custodian

    async def after_write(self, event: WriteEvent) -> None:
        if event.res_type == "Composition" and _ours(event.resource):
            await send_composition_at_unit_end(event, OUTGOING, _UNIT_KEY, self._send)

    def _refuse(self, comp: Json, why: str) -> FhirError:
        return FhirError(
            Category.UNPROCESSABLE,
            f"Composition/{comp['id']} is for an organisation with a HER-id (sent as an Epikrise) and cannot be "
            f"one: {why}",
            "business-rule",
        )

    async def _last_sent(
        self, conn: AsyncConnection, ctx: RequestContext, comp: Json
    ) -> Sent[Epikrise] | None:
        """The last message sent about the Composition."""
        records = await sent_about(self.engine, ctx, conn, f"Composition/{comp['id']}", TITLE)
        return read_sent(records[-1], parse_epikrise) if records else None

    async def _send(self, conn: AsyncConnection, pending: PendingComposition) -> None:
        ctx, comp, amended = pending.ctx, pending.composition, pending.amended
        known = await resolve_all(self.engine, ctx, [comp], conn=conn)
        recipient = f.ref_of(f.ext_value(comp, EXT_RECIPIENT, "Reference"))
        if recipient is None or not f.has_her_id(known.get(recipient)):
            return  # the receiver is on FHIR (no HER-id): nothing to send
        last = await self._last_sent(conn, ctx, comp)
        ended = last is None or last.message.kind is MessageKind.CANCEL
        if comp.get("status") == CANCELLED:
            if ended:
                return  # nothing sent, or already cancelled: nothing to cancel
            kind = MessageKind.CANCEL
        else:
            kind = MessageKind.NEW if ended else MessageKind.CHANGE
        generated = datetime.now(OSLO).replace(tzinfo=None, microsecond=0)  # KITH times: local, no offset
        try:
            msg = epikrise_from_resources(
                comp, known.get, msg_id=str(uuid.uuid4()), generated=generated, own=self.own
            )
            msg = replace(msg, kind=kind)
            check_patient(msg.patient)
            root = build_epikrise(msg)
        except KithError as error:
            raise self._refuse(comp, error.message) from None
        if kind is MessageKind.CHANGE and not amended and last is not None and _unchanged(msg, last):
            return  # an update of nothing the Epikrise carries
        await store_outgoing(
            self.engine,
            ctx,
            conn,
            self.validator,
            root,
            msg_type=msg.msg_type,
            msg_id=msg.msg_id,
            title=TITLE,
            made_from=f"Composition/{comp['id']}",
            subject=comp.get("subject"),
            sender=comp.get("custodian"),
            recipients=[{"reference": recipient}],
            part_of=None if last is None else f"Communication/{last.record['id']}",
        )


def _unchanged(msg: Epikrise, last: Sent[Epikrise]) -> bool:
    """The message says nothing the last one did not: the same XML but for its MsgId, GenDate and kind."""
    same = replace(msg, msg_id=last.message.msg_id, generated=last.message.generated, kind=last.message.kind)
    return to_bytes(build_epikrise(same)) == last.xml


def install(engine: Engine, validator: XsdValidator | None, own: Organisation) -> OutgoingEpikrise:
    outgoing = OutgoingEpikrise(engine, validator, own)
    engine.svc.hooks.after_write.add(Stage.DERIVE, outgoing.after_write)
    return outgoing
