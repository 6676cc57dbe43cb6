"""Outgoing PLO: what a hospital or a municipality on FHIR writes about a patient in hospital becomes the
Pasientlogistikk message the other side's legacy system receives (see the README, "Outgoing PLO").

| write on FHIR | message | to |
| --- | --- | --- |
| a stay (Encounter, class IMP, not received) in progress | `MeldingInnlagtPasient` (LOG_INNLAGT) | the municipality concerned |
| a discharge-ready Task (`plo-task\\|discharge-ready`, not received) `requested` with a notice date | `MeldingUtskrivningsklarPasient` | the Task owner |
| that Task `cancelled` with output `withdrawn` | `AvmeldingUtskrivningsklarPasient` | the owner |
| the stay `finished` | `MeldingOmUtskrevetPasient` (UtTil = the disposition, Volven 8408) | the municipality concerned |
| the stay finished with the death disposition, or `Patient.deceasedDateTime` written while it is open | `OrienteringOmDod` (LOG_DOD) | the municipality concerned |
| a correction of what was sent / the resource `entered-in-error` | Endring (M) / Kansellering (C) in the message's conversation | its receiver |
| the municipality's answer on a notice received from a hospital | `TilbakemeldingUtskrivningsklarPasient` (2.0) | the hospital that sent the notice |

The municipality concerned with a stay: the owner of its discharge-ready notice written on FHIR, else the
`managingOrganization` of the patient's active EpisodeOfCare (the municipality that provides the patient's
services). An admission written with its notice is told by the notice (Hendelsekode 1), not again.

Which messages: `outgoing_plan` (what the resource says now and before, and the conversations sent about
it: the outgoing records `basedOn` it, each later one `partOf` the one before, as for the Epikrise). Each
message is stored through `kith.outgoing.store_outgoing`, batched to the end of the unit of work (a
transaction may write the stay's notice or the owner after the stay). A municipality without a HER-id is
on FHIR and reads the resources itself: nothing is sent. A write that cannot become a valid message is
refused with 422 naming what is missing. The intake's own writes carry `ext:plo-message` and send nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.kith import _fhir_common as f
from app.adapters.kith import _fhir_referral as r
from app.adapters.kith import from_fhir as ff
from app.adapters.kith.model import Organisation
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xsd import XsdValidator
from app.adapters.plo import clock
from app.adapters.plo import outgoing_plan as op
from app.adapters.plo._common import EXT_PLO
from app.adapters.plo.from_fhir import hospital_message, municipality_answer, stay_message
from app.adapters.plo.model import Kind, Logistics, PloMessage
from app.adapters.plo.outgoing_common import Chain, PloOutbox, in_conversation, new_msg_id, now, unchanged
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.store.repository import at_unit_end

Json = dict[str, Any]
_UNIT_KEY = "plo-outgoing"
MAX_NOTICES = 10  # discharge-ready Tasks of one stay (renewed notices are updates of the same one)
MAX_STAYS = 200  # stays of one patient
MAX_EPISODES = 20  # active EpisodeOfCare of one patient
OUTGOING = SystemPrincipal(
    "plo-outgoing",
    "a stay, a discharge-ready notice or the municipality's answer written on FHIR is sent as PLO",
)


def _is_notice(task: Json | None) -> bool:
    codings = ((task or {}).get("code") or {}).get("coding") or []
    return any(
        c.get("system") == clock.TASK_SYSTEM and c.get("code") == clock.DISCHARGE_READY for c in codings
    )


def _answer(task: Json | None) -> tuple[str | None, Any]:
    return clock.answer_code(task or {}), clock.parts(task or {}, "output").get("canReceiveFrom")


def answers(task: Json, previous: Json | None) -> bool:
    """A notice received from a hospital whose answer the municipality changed on FHIR (pure)."""
    received = f.exts(task, EXT_PLO)
    changed = _answer(task) != _answer(previous)
    by_fhir = previous is not None and f.exts(previous, EXT_PLO) == received
    return bool(received) and clock.answer_code(task) is not None and changed and by_fhir


def is_stay(encounter: Json | None) -> bool:
    """An inpatient stay written on FHIR (class IMP, no `ext:plo-message`: not itself received)."""
    e = encounter or {}
    return not f.exts(e, EXT_PLO) and (e.get("class") or {}).get("code") == "IMP"


@dataclass
class _Item:
    """A resource written in the unit of work: the version before the unit's first write, the last one."""

    res_type: str
    resource: Json
    previous: Json | None


@dataclass
class _StayWrite:
    """A stay to look at: as it is and was (the same when only its Patient was written), and the
    Patient's death date before the unit (`deceased_known`: the Patient was written in it)."""

    now: Json
    before: Json | None
    deceased_before: str | None = None
    deceased_known: bool = False


@dataclass(frozen=True)
class _Batch:
    ctx: RequestContext
    item: _Item


@dataclass(frozen=True)
class OutgoingPlo(PloOutbox):
    TITLE: ClassVar[str] = "Pasientlogistikk"

    async def after_write(self, event: WriteEvent) -> None:
        if event.interaction == "delete" or event.resource is None:
            return
        resource = {**event.resource, "resourceType": event.res_type, "id": event.res_id}
        previous = event.previous_resource
        if event.res_type == "Task" and _is_notice(resource):
            received = bool(f.exts(resource, EXT_PLO))
            wanted = (
                answers(resource, previous) if received else op.changed(resource, previous, op.TASK_FIELDS)
            )
        elif event.res_type == "Encounter" and is_stay(resource):
            wanted = op.changed(resource, previous, op.STAY_FIELDS)
        else:  # a Patient: only a death date written or changed (not every new Patient)
            died = resource.get("deceasedDateTime")
            wanted = event.res_type == "Patient" and died != (previous or {}).get("deceasedDateTime")
        if not wanted:
            return
        ctx = RequestContext(event.ctx.base, OUTGOING, event.ctx.request_id)
        item = _Item(event.res_type, resource, previous)
        await at_unit_end(event.conn, _UNIT_KEY, self._send_all, [_Batch(ctx, item)])

    async def _send_all(self, conn: AsyncConnection, batches: list[_Batch]) -> None:
        items: dict[str, _Item] = {}
        for b in batches:  # one resource written twice in the unit: its first previous, its last content
            key = f"{b.item.res_type}/{b.item.resource['id']}"
            first = items.get(key)
            items[key] = b.item if first is None else replace(b.item, previous=first.previous)
        ctx = batches[0].ctx
        stays: dict[str, _StayWrite] = {}
        for item in items.values():
            if item.res_type == "Encounter":
                stays[item.resource["id"]] = _StayWrite(item.resource, item.previous)
        for item in items.values():
            if item.res_type == "Patient" and (stay := await self._open_stay(conn, ctx, item.resource)):
                write = stays.setdefault(stay["id"], _StayWrite(stay, stay))
                write.deceased_before = (item.previous or {}).get("deceasedDateTime")
                write.deceased_known = True
        for item in items.values():
            if item.res_type == "Task" and f.exts(item.resource, EXT_PLO):
                if answers(item.resource, item.previous):
                    await self._answer(conn, ctx, item.resource)
            elif item.res_type == "Task":
                await self._notice(conn, ctx, item.resource, item.previous)
        for write in stays.values():
            await self._stay(conn, ctx, write)

    async def _sent(
        self, conn: AsyncConnection, ctx: RequestContext, made_from: str, previous: Json | None
    ) -> Chain:
        """What was sent about the resource (nothing about one created in this unit of work)."""
        return Chain(made_from, [], None) if previous is None else await self._chain(conn, ctx, made_from)

    async def _notices_of(self, conn: AsyncConnection, ctx: RequestContext, stay: Json) -> Json | None:
        """The stay's latest discharge-ready notice written on FHIR that is not in error."""
        criteria = [("encounter", f"Encounter/{stay['id']}"), ("code", clock.TASK_TOKEN)]
        tasks = await self.engine.search(ctx, "Task", criteria, MAX_NOTICES, conn=conn)
        tasks.sort(key=lambda t: t.get("meta", {}).get("lastUpdated", ""))
        ours = [t for t in tasks if not f.exts(t, EXT_PLO) and t.get("status") != op.CANCELLED]
        return ours[-1] if ours else None

    async def _episode(self, conn: AsyncConnection, ctx: RequestContext, patient: str) -> Json | None:
        """The patient's latest active EpisodeOfCare with a managingOrganization: the municipality that
        provides the patient's services."""
        criteria = [("patient", patient), ("status", "active")]
        episodes = await self.engine.search(ctx, "EpisodeOfCare", criteria, MAX_EPISODES, conn=conn)
        episodes = [e for e in episodes if f.ref_of(e.get("managingOrganization"))]
        episodes.sort(key=lambda e: ((e.get("period") or {}).get("start", ""), e["meta"]["lastUpdated"]))
        return episodes[-1] if episodes else None

    async def _open_stay(self, conn: AsyncConnection, ctx: RequestContext, patient: Json) -> Json | None:
        """The stay a death written on the Patient is about: the patient's latest stay written on FHIR that
        is open or finished with the death disposition."""
        criteria = [("subject", f"Patient/{patient['id']}")]
        stays = await self.engine.search(ctx, "Encounter", criteria, MAX_STAYS, conn=conn)
        stays = [s for s in stays if is_stay(s) and (s.get("status") in op.OPEN_STATES or op.died(s))]
        stays.sort(key=lambda s: ((s.get("period") or {}).get("start", ""), s["meta"]["lastUpdated"]))
        return stays[-1] if stays else None

    # --- the messages -----------------------------------------------------------------------------------------

    async def _notice(
        self, conn: AsyncConnection, ctx: RequestContext, task: Json, previous: Json | None
    ) -> None:
        made_from = f"Task/{task['id']}"
        chain = await self._sent(conn, ctx, made_from, previous)
        steps = op.plan(
            op.task_says(task),
            op.task_says(previous),
            op.conversations(chain.sent),
            task.get("status") == op.CANCELLED,
        )
        if not steps:
            return
        known = await resolve_all(self.engine, ctx, [task], conn=conn)
        encounter = known.get(f.ref_of(task.get("encounter")) or "")
        owner = f.ref_of(task.get("owner"))
        for step in steps:
            if step.kind is Kind.CANCEL:
                await self._cancel(conn, ctx, chain, _last(step), task.get("for"))
                continue
            if owner is None or not f.has_her_id(known.get(owner)):
                return  # the municipality is on FHIR (no HER-id): it reads the Task
            msg = hospital_message(
                step.logistics, task, encounter, known.get, msg_id=new_msg_id(), generated=now(), own=self.own
            )
            await self._send(conn, ctx, chain, step, msg, task.get("for"), task.get("requester"), owner)

    async def _stay(self, conn: AsyncConnection, ctx: RequestContext, write: _StayWrite) -> None:
        stay = write.now
        made_from = f"Encounter/{stay['id']}"
        subject = f.ref_of(stay.get("subject"))
        chain = await self._sent(conn, ctx, made_from, write.before)
        notice = await self._notices_of(conn, ctx, stay)
        concerned = notice or (await self._episode(conn, ctx, subject) if subject else None)
        if concerned is None and not chain.sent:
            return  # no municipality concerned and nothing sent to correct (most stays: two searches)
        known = await resolve_all(self.engine, ctx, [stay, *([concerned] if concerned else [])], conn=conn)
        patient = known.get(subject or "")
        deceased = (patient or {}).get("deceasedDateTime")
        steps = op.plan(
            op.stay_says(stay, deceased),
            op.stay_says(write.before, write.deceased_before if write.deceased_known else deceased),
            op.conversations(chain.sent),
            stay.get("status") == op.CANCELLED,
        )
        if notice is not None or stay.get("status") not in op.OPEN_STATES:  # the notice told the admission
            steps = [s for s in steps if (s.logistics, s.kind) != (Logistics.ADMITTED, Kind.NEW)]
        field = "owner" if notice is not None else "managingOrganization"
        receiver = f.ref_of((concerned or {}).get(field))
        sender = (notice or {}).get("requester")
        for step in steps:
            if step.kind is Kind.CANCEL:
                await self._cancel(conn, ctx, chain, _last(step), stay.get("subject"))
                continue
            if receiver is None or not f.has_her_id(known.get(receiver)):
                return  # no municipality concerned, or one on FHIR (no HER-id): nothing is sent
            msg = stay_message(
                step.logistics,
                stay,
                known.get,
                sender=sender,
                receiver=receiver,
                msg_id=new_msg_id(),
                generated=now(),
                own=self.own,
                died_at=op.death_time(stay, patient) if step.logistics is Logistics.DEATH else None,
            )
            by = sender or stay.get("serviceProvider")
            await self._send(conn, ctx, chain, step, msg, stay.get("subject"), by, receiver)

    async def _send(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        chain: Chain,
        step: op.Step,
        msg: PloMessage,
        subject: Json | None,
        sender: Json | None,
        receiver: str,
    ) -> None:
        """A Ny, or an Endring in the step's conversation unless it reads as the last message sent."""
        conv = step.conversation
        if step.kind is Kind.CHANGE and conv is not None:
            msg = in_conversation(msg, Kind.CHANGE, conv.last.message)
            if unchanged(msg, conv.last):
                return
        await self._store(conn, ctx, chain, msg, subject, sender, [{"reference": receiver}])

    async def _answer(self, conn: AsyncConnection, ctx: RequestContext, task: Json) -> None:
        """The municipality's answer, back to the hospital that sent the notice, in its conversation."""
        made_from = f"Task/{task['id']}"
        known = await resolve_all(self.engine, ctx, [task], conn=conn)
        msg = municipality_answer(task, known.get, msg_id=new_msg_id(), generated=now())
        if not _her(msg.receiver):
            raise self._refuse(made_from, "the hospital that sent the notice has no HER-id")
        recipient = _party_org(task, "sender")
        chain = Chain(made_from, [], None)
        await self._store(
            conn, ctx, chain, msg, task.get("for"), task.get("owner"), [recipient] if recipient else []
        )


def _last(step: op.Step) -> op.Sent:
    assert step.conversation is not None
    return step.conversation.last


def _her(org: Organisation | None) -> bool:
    level = org
    while level is not None:
        if any(i.type.code == "HER" for i in level.idents):
            return True
        level = level.sub_organisation
    return False


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
