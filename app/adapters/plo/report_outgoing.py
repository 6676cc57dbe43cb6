"""Outgoing PLO reports: a report written on FHIR (Innleggelsesrapport, Utskrivningsrapport, Helseopplysninger
til lege, Helseopplysninger, Medisinske opplysninger, Orientering om tjenestetilbud) becomes the PLO 1.6
report the receiver's legacy system gets, and so do its Endring and Kansellering.

Which Compositions: written on FHIR (no `ext:plo-message`: not itself received), `type`
`plo-message#<family>` of a report written as 1.6 (`report_from_fhir.report_family`), and the extension
`kith-recipient` (valueReference, as for the Epikrise) naming the receiver's Organization, which has a
HER-id (one without is on FHIR and reads the Composition: nothing is sent). The report is read as the
intake keeps one (`report_from_fhir.native_report`: the sections' `ext:plo-field`, the Conditions,
Observations, MedicationStatements, ServiceRequests and CareTeam they name; the sender is the
`custodian`, else the service's own organisation).

What is sent, by the Composition's status and what was sent about it before (`outgoing_common`: the
records `basedOn` it, each later one `partOf` the one before): `final`/`amended` with nothing sent (or after
a Kansellering) → Ny; again with content the last message did not have, or just made `amended` → Endring
(M) in the report's conversation; `entered-in-error` after a Ny or Endring → Kansellering (C), its last
message again. An update that changes nothing the report carries sends nothing; a Composition that cannot
be the report (no patient identifier, a part missing, XSD-invalid) is refused with 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.epikrise.to_fhir import EXT_RECIPIENT
from app.adapters.kith import _fhir_common as f
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Organisation
from app.adapters.kith.outgoing import CANCELLED, PendingComposition, send_composition_at_unit_end
from app.adapters.kith.stored import resolve_all
from app.adapters.kith.xsd import XsdValidator
from app.adapters.plo._common import EXT_PLO
from app.adapters.plo.model import Kind, UnbuildableError
from app.adapters.plo.outgoing_common import PloOutbox, in_conversation, new_msg_id, now, unchanged
from app.adapters.plo.report_from_fhir import native_report, report_family
from app.fhir.context import SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent

Json = dict[str, Any]
_UNIT_KEY = "plo-report-outgoing"
OUTGOING = SystemPrincipal("plo-report-outgoing", "a PLO report written on FHIR is sent as PLO")


def is_report(resource: Json | None) -> bool:
    """A PLO report written on FHIR (not received) for an Organization (its HER-id is checked later)."""
    if resource is None or f.exts(resource, EXT_PLO) or report_family(resource) is None:
        return False
    recipient = f.ref_of(f.ext_value(resource, EXT_RECIPIENT, "Reference")) or ""
    return recipient.startswith("Organization/")


@dataclass(frozen=True)
class OutgoingReport(PloOutbox):
    TITLE: ClassVar[str] = "PLO"

    async def after_write(self, event: WriteEvent) -> None:
        if event.res_type == "Composition" and is_report(event.resource):
            await send_composition_at_unit_end(event, OUTGOING, _UNIT_KEY, self._send)

    async def _send(self, conn: AsyncConnection, pending: PendingComposition) -> None:
        ctx, comp, amended = pending.ctx, pending.composition, pending.amended
        made_from = f"Composition/{comp['id']}"
        known = await resolve_all(self.engine, ctx, [comp], conn=conn)
        recipient = f.ref_of(f.ext_value(comp, EXT_RECIPIENT, "Reference"))
        if recipient is None or not f.has_her_id(known.get(recipient)):
            return  # the receiver is on FHIR (no HER-id): it reads the Composition
        chain = await self._chain(conn, ctx, made_from)
        last = chain.sent[-1] if chain.sent else None
        ended = last is None or last.message.kind is Kind.CANCEL
        if comp.get("status") == CANCELLED:
            if last is not None and not ended:
                await self._cancel(conn, ctx, chain, last, comp.get("subject"))
            return  # nothing sent, or already cancelled: nothing to cancel
        try:
            msg = native_report(
                comp, known.get, recipient=recipient, msg_id=new_msg_id(), generated=now(), own=self.own
            )
        except (KithError, UnbuildableError) as error:
            raise self._refuse(
                made_from, error.message if isinstance(error, KithError) else str(error)
            ) from None
        if last is not None and not ended:
            msg = in_conversation(msg, Kind.CHANGE, last.message)
            if not amended and unchanged(msg, last):
                return  # an update of nothing the report carries
        sender = comp.get("custodian")
        await self._store(conn, ctx, chain, msg, comp.get("subject"), sender, [{"reference": recipient}])


def install(engine: Engine, validator: XsdValidator | None, own: Organisation) -> OutgoingReport:
    outgoing = OutgoingReport(engine, validator, own)
    engine.svc.hooks.after_write.add(Stage.DERIVE, outgoing.after_write)
    return outgoing
