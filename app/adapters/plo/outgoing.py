"""Outgoing PLO: what a hospital or a municipality on FHIR writes about a discharge-ready patient becomes
the Pasientlogistikk message the other side's legacy system receives.

| write on FHIR | message | to |
| --- | --- | --- |
| a discharge-ready Task (`plo-task\\|discharge-ready`, no `ext:plo-message`: not itself received) created, or its notice date changed, status `requested` | `MeldingUtskrivningsklarPasient` (1.6) | the Task owner (the municipality) |
| that Task becoming `cancelled` with output `withdrawn` | `AvmeldingUtskrivningsklarPasient` (1.6) | the owner |
| the stay (Encounter, not received) becoming `finished`, with such a Task | `MeldingOmUtskrevetPasient` (1.6); `hospitalization.dischargeDisposition` in Volven 8408 is UtTil | the owner |
| the municipality's answer on a notice received from a hospital (`businessStatus`, output `canReceiveFrom`) changed | `TilbakemeldingUtskrivningsklarPasient` (2.0, the only version that has it) | the hospital that sent the notice |

The message is stored through `kith.outgoing.store_outgoing` (outgoing `Communication`, status preparation,
the XML as payload) for the transport's outbox, batched to the end of the unit of work (a transaction may
write the Task's stay or owner after it). A municipality without a HER-id is on FHIR and reads the Task
itself: nothing is sent. A write that cannot become a valid message (no patient identifier, a hospital
without a HER-id for the answer, a discharge without where the patient went, XSD-invalid) is refused with
422 naming what is missing. The intake's own writes carry a new `ext:plo-message` and send nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Organisation
from app.adapters.kith.outgoing import store_outgoing
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xsd import XsdValidator
from app.adapters.plo import clock
from app.adapters.plo._common import EXT_PLO, check_patient
from app.adapters.plo.build import UnbuildableError, build_plo
from app.adapters.plo.from_fhir import hospital_message, municipality_answer
from app.adapters.plo.model import Logistics, PloMessage
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.referrals.taskjson import OSLO
from app.store.repository import at_unit_end

Json = dict[str, Any]
TITLE = "Pasientlogistikk"
_UNIT_KEY = "plo-outgoing"
MAX_NOTICES = 10  # discharge-ready Tasks of one stay (renewed notices are updates of the same one)
OUTGOING = SystemPrincipal(
    "plo-outgoing", "a discharge-ready notice or the municipality's answer written on FHIR is sent as PLO"
)


def _is_notice(task: Json | None) -> bool:
    codings = ((task or {}).get("code") or {}).get("coding") or []
    return any(
        c.get("system") == clock.TASK_SYSTEM and c.get("code") == clock.DISCHARGE_READY for c in codings
    )


def _answer(task: Json | None) -> tuple[str | None, Any]:
    return clock.answer_code(task or {}), clock.parts(task or {}, "output").get("canReceiveFrom")


def task_message(task: Json, previous: Json | None) -> Logistics | None:
    """Which message a write of a discharge-ready Task calls for, if any (pure)."""
    if not _is_notice(task):
        return None
    received = f.exts(task, EXT_PLO)
    if received:  # a notice from a hospital: only the municipality's own change of its answer is sent
        changed = _answer(task) != _answer(previous)
        by_fhir = previous is not None and f.exts(previous, EXT_PLO) == received
        return Logistics.ANSWER if clock.answer_code(task) and changed and by_fhir else None
    before = previous or {}
    notice = clock.parts(task, "input").get("noticeDate")
    if task.get("status") == "requested" and notice is not None:
        renewed = (
            before.get("status") != "requested" or clock.parts(before, "input").get("noticeDate") != notice
        )
        return Logistics.DISCHARGE_READY if renewed else None
    withdrawn = clock.parts(task, "output").get("withdrawn")
    if task.get("status") == "cancelled" and withdrawn is not None and before.get("status") != "cancelled":
        return Logistics.WITHDRAWN
    return None


def encounter_message(encounter: Json, previous: Json | None) -> Logistics | None:
    """A stay written on FHIR that has just finished calls for the discharge message (pure)."""
    if f.exts(encounter, EXT_PLO) or encounter.get("status") != "finished":
        return None
    return None if (previous or {}).get("status") == "finished" else Logistics.DISCHARGED


def _her(org: Organisation | None) -> bool:
    level = org
    while level is not None:
        if any(i.type.code == "HER" for i in level.idents):
            return True
        level = level.sub_organisation
    return False


@dataclass(frozen=True)
class _Pending:
    ctx: RequestContext
    logistics: Logistics
    resource: Json  # the Task, or the finished Encounter


@dataclass(frozen=True)
class OutgoingPlo:
    engine: Engine
    validator: XsdValidator | None
    own: Organisation  # the sender when the notice names no requester

    async def after_write(self, event: WriteEvent) -> None:
        if event.interaction == "delete" or event.resource is None:
            return
        resource = {**event.resource, "id": event.res_id}
        previous = event.previous_resource
        if event.res_type == "Task":
            logistics = task_message(resource, previous)
        elif event.res_type == "Encounter":
            logistics = encounter_message(resource, previous)
        else:
            return
        if logistics is None:
            return
        ctx = RequestContext(event.ctx.base, OUTGOING, event.ctx.request_id)
        await at_unit_end(event.conn, _UNIT_KEY, self._send_all, [_Pending(ctx, logistics, resource)])

    async def _send_all(self, conn: AsyncConnection, pending: list[_Pending]) -> None:
        stays = [i for i in pending if i.resource["resourceType"] == "Encounter"]
        notices = await self._notices_of(conn, stays[0].ctx, [i.resource for i in stays]) if stays else {}
        for item in pending:
            if item.resource["resourceType"] != "Encounter":
                await self._send(conn, item, item.resource, None)
            elif (task := notices.get(f"Encounter/{item.resource['id']}")) is not None:
                await self._send(conn, item, task, item.resource)
            # a finished stay without a notice to a municipality is not a PLO stay: nothing to send

    def _refuse(self, made_from: str, why: str) -> FhirError:
        return FhirError(
            Category.UNPROCESSABLE,
            f"{made_from} is for an organisation with a HER-id (sent as PLO Pasientlogistikk) and cannot be "
            f"one: {why}",
            "business-rule",
        )

    async def _notices_of(
        self, conn: AsyncConnection, ctx: RequestContext, stays: list[Json]
    ) -> dict[str, Json]:
        """The notice written on FHIR of each finished stay, one search for the unit of work's stays."""
        refs = ",".join(f"Encounter/{s['id']}" for s in stays)
        criteria = [("encounter", refs), ("code", clock.TASK_TOKEN)]
        found: dict[str, Json] = {}
        tasks = await self.engine.search(ctx, "Task", criteria, MAX_NOTICES * len(stays), conn=conn)
        tasks.sort(key=lambda t: t.get("meta", {}).get("lastUpdated", ""))
        for t in tasks:
            if not f.exts(t, EXT_PLO) and t.get("status") != "entered-in-error":
                found[str(f.ref_of(t.get("encounter")))] = t  # the latest notice of the stay
        return found

    async def _send(self, conn: AsyncConnection, item: _Pending, task: Json, encounter: Json | None) -> None:
        ctx = item.ctx
        made_from = f"{item.resource['resourceType']}/{item.resource['id']}"
        known = await resolve_all(self.engine, ctx, [task, *([encounter] if encounter else [])], conn=conn)
        if encounter is None and (ref := f.ref_of(task.get("encounter"))) is not None:
            encounter = known.get(ref)
        generated = datetime.now(OSLO).replace(tzinfo=None, microsecond=0)  # KITH times: local, no offset
        msg_id = str(uuid.uuid4())
        if item.logistics is Logistics.ANSWER:
            msg = municipality_answer(task, known.get, msg_id=msg_id, generated=generated)
            if not _her(msg.receiver):
                raise self._refuse(made_from, "the hospital that sent the notice has no HER-id")
            sender, recipient = task.get("owner"), _party_org(task, "sender")
        else:
            owner = f.ref_of(task.get("owner"))
            if owner is None or not f.has_her_id(known.get(owner)):
                return  # the municipality is on FHIR (no HER-id): it reads the Task
            msg = hospital_message(
                item.logistics, task, encounter, known.get, msg_id=msg_id, generated=generated, own=self.own
            )
            sender, recipient = task.get("requester"), {"reference": owner}
        try:
            check_patient(msg)
            root = build_plo(msg)
        except (KithError, UnbuildableError) as error:
            raise self._refuse(
                made_from, error.message if isinstance(error, KithError) else str(error)
            ) from None
        await store_outgoing(
            self.engine,
            ctx,
            conn,
            self.validator,
            root,
            msg_type=msg.msg_type,
            msg_id=msg.msg_id,
            title=_title(msg),
            made_from=made_from,
            subject=task.get("for"),
            sender=sender,
            recipients=[recipient] if recipient else [],
        )


def _title(msg: PloMessage) -> str:
    return f"{TITLE}: {msg.msg_type.display}" if msg.msg_type.display else TITLE


def _party_org(task: Json, role: str) -> Json | None:
    """The Organization a notice's `kith-party` of `role` names (the hospital's department)."""
    for extension in f.exts(task, r.EXT_PARTY):
        if ff._part(extension, "role", "Code") == role and (ref := ff._ref(extension, "organization")):
            return {"reference": ref}
    return None


def install(engine: Engine, validator: XsdValidator | None, own: Organisation) -> OutgoingPlo:
    outgoing = OutgoingPlo(engine, validator, own)
    engine.svc.hooks.after_write.add(Stage.DERIVE, outgoing.after_write)
    return outgoing
