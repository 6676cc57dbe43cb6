"""Outgoing Epikrise: a discharge summary written on FHIR by a hospital on FHIR becomes the Epikrise 1.2 that
a GP's legacy system receives.

Which Compositions: created on FHIR (no `kith-epikrise` extension: not itself received), `type` LOINC 18842-5
(Discharge summary), status `final` or `amended`, and the extension
`http://helsebro.no/fhir/StructureDefinition/kith-recipient` (valueReference) naming the GP's Organization,
which has a HER-id. Its subject, encounter, custodian (the sender, else `KITH_RECEIVER_NAME` /
`KITH_RECEIVER_HER_ID`), authors and the Conditions and MedicationStatements in its sections are read with the
write's own unit of work (`app.adapters.epikrise.from_fhir`), and the Epikrise is stored as an outgoing
`Communication` (status `preparation`, `basedOn` and `about` the Composition, the XML as payload) for the
gateway, batched to the end of the unit of work like the Dialogmelding. A recipient without a HER-id sends
nothing; a Composition that cannot be an Epikrise (no patient identifier, XSD-invalid) is refused with 422.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.epikrise.build import build_epikrise
from app.adapters.epikrise.from_fhir import epikrise_from_resources
from app.adapters.epikrise.to_fhir import DISCHARGE_SUMMARY, EXT_MESSAGE, EXT_RECIPIENT
from app.adapters.kith import _fhir_common as f
from app.adapters.kith._henv_common import check_patient
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Organisation
from app.adapters.kith.outgoing import store_outgoing
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xsd import XsdValidator
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.no_basis.identifiers import HERID_SYSTEM
from app.resources.referrals.taskjson import OSLO

Json = dict[str, Any]
TITLE = "Epikrise"
_UNIT_KEY = "kith-epikrise-outgoing"
OUTGOING = SystemPrincipal(
    "kith-epikrise-outgoing", "a discharge summary written on FHIR is sent as an Epikrise"
)


def to_send(resource: Json | None) -> bool:
    """A discharge summary written on FHIR, final or amended, for an Organization (HER-id checked later)."""
    if (
        resource is None
        or resource.get("status") not in ("final", "amended")
        or f.exts(resource, EXT_MESSAGE)
    ):
        return False
    codings = (resource.get("type") or {}).get("coding") or []
    if not any(
        c.get("system") == DISCHARGE_SUMMARY["system"] and c.get("code") == DISCHARGE_SUMMARY["code"]
        for c in codings
    ):
        return False
    recipient = f.ref_of(f.ext_value(resource, EXT_RECIPIENT, "Reference")) or ""
    return recipient.startswith("Organization/")


def _has_her(org: Json | None) -> bool:
    return any(i.get("system") == HERID_SYSTEM and i.get("value") for i in (org or {}).get("identifier", []))


@dataclass(frozen=True)
class _Pending:
    ctx: RequestContext
    composition: Json


@dataclass(frozen=True)
class OutgoingEpikrise:
    engine: Engine
    validator: XsdValidator | None
    own: Organisation  # the sender when the Composition has no custodian

    async def after_write(self, event: WriteEvent) -> None:
        if event.res_type != "Composition" or event.interaction != "create" or not to_send(event.resource):
            return
        assert event.resource is not None
        ctx = RequestContext(event.ctx.base, OUTGOING, event.ctx.request_id)
        await self.engine.at_unit_end(
            event.conn,
            _UNIT_KEY,
            self._send_all,
            [
                _Pending(ctx, {**event.resource, "id": event.res_id}),
            ],
        )

    async def _send_all(self, conn: AsyncConnection, pending: list[_Pending]) -> None:
        for item in pending:
            await self._send(conn, item.ctx, item.composition)

    def _refuse(self, comp: Json, why: str) -> FhirError:
        return FhirError(
            Category.UNPROCESSABLE,
            f"Composition/{comp['id']} is for an organisation with a HER-id (sent as an Epikrise) and cannot be "
            f"one: {why}",
            "business-rule",
        )

    async def _send(self, conn: AsyncConnection, ctx: RequestContext, comp: Json) -> None:
        known = await resolve_all(self.engine, ctx, [comp], conn=conn)
        recipient = f.ref_of(f.ext_value(comp, EXT_RECIPIENT, "Reference"))
        if recipient is None or not _has_her(known.get(recipient)):
            return  # the receiver is on FHIR (no HER-id): nothing to send
        generated = datetime.now(OSLO).replace(tzinfo=None, microsecond=0)  # KITH times: local, no offset
        try:
            msg = epikrise_from_resources(
                comp, known.get, msg_id=str(uuid.uuid4()), generated=generated, own=self.own
            )
            check_patient(msg.patient)
            root = build_epikrise(msg)
        except KithError as error:
            raise self._refuse(comp, error.message) from None
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
        )


def install(engine: Engine, validator: XsdValidator | None, own: Organisation) -> OutgoingEpikrise:
    outgoing = OutgoingEpikrise(engine, validator, own)
    engine.svc.hooks.after_write.add(Stage.DERIVE, outgoing.after_write)
    return outgoing
