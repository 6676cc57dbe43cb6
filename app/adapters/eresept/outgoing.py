"""Outgoing e-resept: a prescription written on FHIR becomes the M1 a pharmacy system not on FHIR receives.

Which requests: a MedicationRequest with intent `order`, status `active` and a category saying a pharmacy
dispenses it (HL7 medicationrequest-category `community` or `discharge`), that did not itself come from an
e-resept message (it has no ReseptId identifier). It yields one M1 when it becomes such a request: on
create, or on the update that activates it; later updates send nothing (an M1 is never changed: a new
prescription replaces it). An inpatient order, or a request with no category, stays on FHIR.

The M1 is stored as an outgoing `Communication` in the write's own unit of work (status `preparation`,
category `outgoing`, topic ERM1, the ReseptId as its identifier, the XML as payload, Reseptformidleren as
recipient), for the gateway to the health network to collect and send like the referral status messages;
the receiver's AppRec posted to `/$kith-message` marks it delivered. The ReseptId lives on that record,
so an M10 or M5 naming it finds the request. A request written to be sent that cannot be an M1 (no coded
Medication, no prescriber in an organisation, no validity end) is refused with 422 naming what is missing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.eresept.from_fhir import RESEPTFORMIDLEREN, prescription_from_request
from app.adapters.eresept.messages import TYPE_M1, build_m1
from app.adapters.eresept.model import Prescription
from app.adapters.eresept.to_fhir import PRESCRIPTION_ID_SYSTEM
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import KithError
from app.adapters.kith.intake import MESSAGE_TYPE_SYSTEM, SENT_MSG_ID_SYSTEM, xml_payload
from app.adapters.kith.status_messages import OUTGOING_CATEGORY
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.no_basis.identifiers import HERID_SYSTEM
from app.resources.referrals.taskjson import OSLO

Json = dict[str, Any]
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
DISPENSED_BY_PHARMACY = frozenset({"community", "discharge"})
M1_TITLE = "e-resept M1"
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


def outgoing_record(rx: Prescription, xml: bytes, request_id: str, request: Json) -> Json:
    """The Communication that holds the M1 until the gateway has delivered it."""
    record: Json = {
        "resourceType": "Communication",
        "identifier": [{"system": SENT_MSG_ID_SYSTEM, "value": rx.envelope.msg_id}],
        "status": "preparation",
        "category": [{"coding": [OUTGOING_CATEGORY]}],
        "topic": {"coding": [{"system": MESSAGE_TYPE_SYSTEM, **f.coding(TYPE_M1)}]},
        "about": [{"reference": f"MedicationRequest/{request_id}"}],
        "recipient": [
            {
                "identifier": {"system": HERID_SYSTEM, "value": RESEPTFORMIDLEREN.idents[0].id},
                "display": RESEPTFORMIDLEREN.name,
            }
        ],
        "payload": [xml_payload(M1_TITLE, xml)],
    }
    if "subject" in request:
        record["subject"] = request["subject"]
    if "requester" in request:
        record["sender"] = request["requester"]
    return record


@dataclass(frozen=True)
class _Pending:
    ctx: RequestContext
    request: Json  # as stored, with its id


@dataclass(frozen=True)
class OutgoingPrescriptions:
    engine: Engine
    validator: XsdValidator | None

    async def after_write(self, event: WriteEvent) -> None:
        if event.res_type != "MedicationRequest" or not to_send(event.resource):
            return
        if event.interaction != "create" and to_send(event.previous_resource):
            return  # sent when it became a prescription to dispense
        assert event.resource is not None
        ctx = RequestContext(event.ctx.base, OUTGOING, event.ctx.request_id)
        pending = [_Pending(ctx, {**event.resource, "id": event.res_id})]
        # At the end of the unit of work: a transaction writes the request's Medication and prescriber in
        # any order (its PUTs after its POSTs), and all of them are there only then.
        if not self.engine.svc.repo.batch_in_unit(event.conn, _UNIT_KEY, self._send_all, pending):
            await self._send_all(event.conn, pending)

    async def _send_all(self, conn: AsyncConnection, pending: list[_Pending]) -> None:
        for item in pending:
            await self._send(conn, item.ctx, item.request)

    async def _send(self, conn: AsyncConnection, ctx: RequestContext, request: Json) -> None:
        known = await resolve_all(self.engine, ctx, [request], conn=conn)
        now = datetime.now(OSLO).replace(tzinfo=None, microsecond=0)  # KITH times are local, without offset
        try:
            rx = prescription_from_request(
                request, known.get, generated=now, prescription_id=str(uuid.uuid4())
            )
            root = build_m1(rx)
        except KithError as error:
            raise FhirError(
                Category.UNPROCESSABLE,
                f"A MedicationRequest for a pharmacy ({'/'.join(sorted(DISPENSED_BY_PHARMACY))}) is sent as an "
                f"e-resept M1, and MedicationRequest/{request['id']} cannot be: {error.message}",
                "business-rule",
            ) from None
        if self.validator is not None:
            result = self.validator.validate(root)
            if not result.valid and not result.skipped:
                raise FhirError(
                    Category.UNPROCESSABLE,
                    f"The e-resept M1 made from MedicationRequest/{request['id']} does not validate against "
                    "its XSD: " + "; ".join(result.errors[:3]),
                    "business-rule",
                )
        record = outgoing_record(rx, to_bytes(root), request["id"], request)
        await self.engine.create(ctx, "Communication", record, conn=conn)


def install(engine: Engine, validator: XsdValidator | None) -> OutgoingPrescriptions:
    outgoing = OutgoingPrescriptions(engine, validator)
    engine.svc.hooks.after_write.add(Stage.DERIVE, outgoing.after_write)
    return outgoing
