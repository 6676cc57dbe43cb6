"""Outgoing e-resept: a prescription written on FHIR becomes the M1 a pharmacy system not on FHIR receives.

Which requests: a MedicationRequest with intent `order`, status `active` and a category saying a pharmacy
dispenses it (HL7 medicationrequest-category `community` or `discharge`), that did not itself come from an
e-resept message (it has no ReseptId identifier). It yields one M1 when it becomes such a request: on
create, or on the update that activates it; later updates send nothing (an M1 is never changed: a new
prescription replaces it). An inpatient order, or a request with no category, stays on FHIR.

The M1 is stored as an outgoing `Communication` in the write's own unit of work (status `preparation`,
category `outgoing`, topic ERM1, the ReseptId as its identifier, `basedOn` and `about` the request, the XML
as payload, Reseptformidleren as recipient), for the gateway to the health network to collect and send
like the referral status messages;
the receiver's AppRec posted to `/$kith-message` marks it delivered. The ReseptId lives on that record,
so an M10 or M5 naming it finds the request. A request written to be sent that cannot be an M1 (no coded
Medication, no prescriber in an organisation, no validity end) is refused with 422 naming what is missing.

When such a request is later cancelled or stopped on FHIR, an M5 recalls the M1 (its ReseptId from the M1's
record), stored the same way (topic ERM5); its reason is `statusReason`, which must carry a Volven 7500
code (årsak til tilbakekalling), else the update is refused with 422.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.eresept._fhir_parties import sender_from
from app.adapters.eresept.from_fhir import RESEPTFORMIDLEREN, prescription_from_request, recall_from_request
from app.adapters.eresept.messages import TYPE_M1, TYPE_M5, build_m1, build_m5
from app.adapters.eresept.to_fhir import PRESCRIPTION_ID_SYSTEM, RECALL_REASON_SYSTEM
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import KithError
from app.adapters.kith.intake import SENT_MSG_ID_SYSTEM
from app.adapters.kith.model import Coded
from app.adapters.kith.outgoing import store_outgoing
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xsd import XsdValidator
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.no_basis.identifiers import HERID_SYSTEM
from app.resources.referrals.taskjson import OSLO
from app.store.repository import at_unit_end

Json = dict[str, Any]
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
DISPENSED_BY_PHARMACY = frozenset({"community", "discharge"})
M1_TITLE = "e-resept M1"
M5_TITLE = "e-resept M5"
RECALLED = frozenset({"cancelled", "stopped"})
RESEPTFORMIDLEREN_REFERENCE = {
    "identifier": {"system": HERID_SYSTEM, "value": RESEPTFORMIDLEREN.idents[0].id},
    "display": RESEPTFORMIDLEREN.name,
}
MAX_SENT = 100  # messages sent about one prescription
_UNIT_KEY = "eresept-outgoing-m1"
OUTGOING = SystemPrincipal("eresept-outgoing", "a prescription written on FHIR is sent as an e-resept M1")


def to_send(request: Json | None) -> bool:
    """A prescription a pharmacy dispenses, written on FHIR (not received as an M1)."""
    if request is None or request.get("intent") != "order" or request.get("status") != "active":
        return False
    codes = {
        c.get("code")
        for cc in request.get("category", [])
        for c in cc.get("coding", [])
        if c.get("system") == CATEGORY_SYSTEM
    }
    received = any(i.get("system") == PRESCRIPTION_ID_SYSTEM for i in request.get("identifier", []))
    return bool(codes & DISPENSED_BY_PHARMACY) and not received


def is_recalled(old: Json | None, new: Json | None) -> bool:
    """A request that was a prescription to dispense, now cancelled or stopped."""
    return to_send(old) and (new or {}).get("status") in RECALLED


@dataclass(frozen=True)
class _Pending:
    ctx: RequestContext
    request: Json  # as stored, with its id
    message: str  # "M1" or "M5"


@dataclass(frozen=True)
class OutgoingPrescriptions:
    engine: Engine
    validator: XsdValidator | None

    async def after_write(self, event: WriteEvent) -> None:
        if event.res_type != "MedicationRequest" or event.resource is None:
            return
        previous = event.previous_resource if event.interaction != "create" else None
        if to_send(event.resource) and not to_send(previous):
            message = "M1"
        elif is_recalled(previous, event.resource):
            message = "M5"
        else:
            return  # not for a pharmacy, or already sent (an M1 is never changed)
        ctx = RequestContext(event.ctx.base, OUTGOING, event.ctx.request_id)
        # At the end of the unit of work: a transaction writes the request's Medication and prescriber in
        # any order (its PUTs after its POSTs), and all of them are there only then.
        pending = _Pending(ctx, {**event.resource, "id": event.res_id}, message)
        await at_unit_end(event.conn, _UNIT_KEY, self._send_all, [pending])

    async def _send_all(self, conn: AsyncConnection, pending: list[_Pending]) -> None:
        for item in pending:
            if item.message == "M1":
                await self._send_m1(conn, item.ctx, item.request)
            else:
                await self._send_m5(conn, item.ctx, item.request)

    async def _send_m1(self, conn: AsyncConnection, ctx: RequestContext, request: Json) -> None:
        known = await resolve_all(self.engine, ctx, [request], conn=conn)
        try:
            rx = prescription_from_request(
                request, known.get, generated=_now(), prescription_id=str(uuid.uuid4())
            )
            root = build_m1(rx)
        except KithError as error:
            raise _refused(request, "sent as an e-resept M1", error) from None
        await self._store(conn, ctx, TYPE_M1, rx.envelope.msg_id, M1_TITLE, root, request)

    async def _send_m5(self, conn: AsyncConnection, ctx: RequestContext, request: Json) -> None:
        query = [("based-on", f"MedicationRequest/{request['id']}"), ("identifier", f"{SENT_MSG_ID_SYSTEM}|")]
        sent = await self.engine.search(ctx, "Communication", query, MAX_SENT, conn=conn)
        m1 = [r for r in sent if _topic(r) == TYPE_M1.code]
        if not m1:
            return  # written before prescriptions were sent from here: there is nothing to recall
        reasons = (request.get("statusReason") or {}).get("coding") or []
        if not any(c.get("system") == RECALL_REASON_SYSTEM for c in reasons):
            raise FhirError(
                Category.UNPROCESSABLE,
                f"MedicationRequest/{request['id']} was sent as an e-resept M1: cancelling it sends an M5, "
                f"whose reason is statusReason with a code of {RECALL_REASON_SYSTEM} (årsak til tilbakekalling)",
                "business-rule",
            )
        known = await resolve_all(self.engine, ctx, [request], conn=conn)
        subject, requester = f.ref_of(request.get("subject")), f.ref_of(request.get("requester"))
        try:
            recall = recall_from_request(
                request,
                sender_from(requester, None, known.get),
                known.get(subject) if subject else None,
                msg_id=str(uuid.uuid4()),
                generated=_now(),
                prescription_id=m1[0]["identifier"][0]["value"],
            )
            root = build_m5(recall)
        except KithError as error:
            raise _refused(request, "recalled with an e-resept M5", error) from None
        await self._store(conn, ctx, TYPE_M5, recall.envelope.msg_id, M5_TITLE, root, request)

    async def _store(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        msg_type: Coded,
        msg_id: str,
        title: str,
        root: etree._Element,
        request: Json,
    ) -> None:
        await store_outgoing(
            self.engine,
            ctx,
            conn,
            self.validator,
            root,
            msg_type=msg_type,
            msg_id=msg_id,
            title=title,
            made_from=f"MedicationRequest/{request['id']}",
            subject=request.get("subject"),
            sender=request.get("requester"),
            recipients=[RESEPTFORMIDLEREN_REFERENCE],
        )


def _now() -> datetime:
    return datetime.now(OSLO).replace(tzinfo=None, microsecond=0)  # KITH times are local, without offset


def _topic(record: Json) -> str | None:
    codings = (record.get("topic") or {}).get("coding") or [{}]
    code = codings[0].get("code")
    return code if isinstance(code, str) else None


def _refused(request: Json, what: str, error: KithError) -> FhirError:
    return FhirError(
        Category.UNPROCESSABLE,
        f"A MedicationRequest for a pharmacy ({'/'.join(sorted(DISPENSED_BY_PHARMACY))}) is {what}, and "
        f"MedicationRequest/{request['id']} cannot be: {error.message}",
        "business-rule",
    )


def install(engine: Engine, validator: XsdValidator | None) -> OutgoingPrescriptions:
    outgoing = OutgoingPrescriptions(engine, validator)
    engine.svc.hooks.after_write.add(Stage.DERIVE, outgoing.after_write)
    return outgoing
