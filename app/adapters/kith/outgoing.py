"""Storing a message made from a FHIR write: the one path of every outgoing hook (Dialogmelding, Epikrise,
e-resept, PLO).

A write hook turns the resource just written into a legacy message; `store_outgoing` checks it against its
XSD and stores it as the outgoing record (`intake.outgoing_message`) in the write's own unit of work, so the
message and the write that made it commit together or not at all. A message that does not validate refuses
the write (422): a legacy system would refuse it too, and the writer can still correct it.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.intake import OUTGOING_CATEGORY, outgoing_message
from app.adapters.kith.model import Coded, M, Sent
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import WriteEvent
from app.fhir.outcome import Category, FhirError
from app.fhir.service import WriteResult
from app.store.repository import at_unit_end

Json = dict[str, Any]
MAX_SENT = 100  # messages sent about one resource


async def store_outgoing(
    engine: Engine,
    ctx: RequestContext,
    conn: AsyncConnection,
    validator: XsdValidator | None,
    root: etree._Element,
    *,
    msg_type: Coded,
    msg_id: str,
    title: str,
    made_from: str,
    subject: Json | None,
    sender: Json | None,
    recipients: Sequence[Json],
    part_of: str | None = None,
) -> WriteResult:
    """Validate the message `root` made from the resource `made_from` ("Type/id") and store it as an
    outgoing message record (`basedOn` and `about` that resource; `partOf` the record of the message it
    follows, if any) with the write's unit of work `conn`."""
    if validator is not None:
        result = validator.validate(root)
        if not result.valid and not result.skipped:
            raise FhirError(
                Category.UNPROCESSABLE,
                f"The {title} made from {made_from} does not validate against its XSD: "
                + "; ".join(result.errors[:3]),
                "business-rule",
            )
    record = outgoing_message(
        msg_type,
        msg_id,
        title,
        to_bytes(root),
        based_on=made_from,
        about=made_from,
        subject=subject,
        sender=sender,
        recipients=recipients,
        part_of=part_of,
    )
    return await engine.create(ctx, "Communication", record, conn=conn)


def sent_xml(record: Json) -> bytes:
    """The message an outgoing record holds, as sent."""
    return base64.b64decode((record.get("payload") or [{}])[0]["contentAttachment"]["data"])


def read_sent(record: Json, parse: Callable[[etree._Element], M]) -> Sent[M]:
    """An outgoing record with its message read back by `parse` (parse_plo, parse_epikrise, ...)."""
    xml = sent_xml(record)
    return Sent(record, parse(parse_xml(xml)), xml)


def chain(records: list[Json]) -> list[Json]:
    """The records in the order sent (each later one `partOf` the one before); empty when they do not form
    one chain (nothing is then taken as sent)."""
    by_ref = {f"Communication/{r['id']}": r for r in records}
    followed = {f.ref_of(p) for r in records for p in r.get("partOf", [])}
    heads = [r for r in records if f"Communication/{r['id']}" not in followed]
    if len(heads) != 1:
        return []
    out = [heads[0]]
    while len(out) <= len(records):
        parent = next((f.ref_of(p) for p in out[-1].get("partOf", [])), None)
        if parent is None or (before := by_ref.get(str(parent))) is None:
            break
        out.append(before)
    return out[::-1]


async def sent_about(
    engine: Engine, ctx: RequestContext, conn: AsyncConnection, made_from: str, title: str
) -> list[Json]:
    """The outgoing records titled `title` (or `title: ...`) made from the resource `made_from` ("Type/id"),
    oldest first."""
    category = f"{OUTGOING_CATEGORY['system']}|{OUTGOING_CATEGORY['code']}"
    params = [("based-on", made_from), ("category", category)]
    records = await engine.search(ctx, "Communication", params, MAX_SENT, conn=conn)
    return chain([r for r in records if _title(r) == title or str(_title(r)).startswith(f"{title}: ")])


def _title(record: Json) -> Any:
    return (record.get("payload") or [{}])[0].get("contentAttachment", {}).get("title")


SENT = ("final", "amended")  # a Composition in these is sent (a new message, or its Endring)
CANCELLED = "entered-in-error"  # and set to this after, its Kansellering


@dataclass(frozen=True)
class PendingComposition:
    """A Composition written on FHIR to send as a message at the end of the unit of work."""

    ctx: RequestContext  # the outgoing hook's own principal, in the write's request
    composition: Json  # with its id
    amended: bool  # the write made it `amended`: a change even if the message reads the same


def _composition_to_send(event: WriteEvent, principal: SystemPrincipal) -> PendingComposition | None:
    """What a write of a Composition (already known to be one the hook sends) asks of it: final or amended,
    or put in error by an update; None for any other status."""
    resource = event.resource
    status = resource.get("status") if resource is not None else None
    if resource is None or not (status in SENT or (status == CANCELLED and event.interaction == "update")):
        return None
    ctx = RequestContext(event.ctx.base, principal, event.ctx.request_id)
    before = event.previous_resource if event.interaction == "update" else None
    amended = status == "amended" and (before or {}).get("status") != "amended"
    return PendingComposition(ctx, {**resource, "id": event.res_id}, amended)


async def send_composition_at_unit_end(
    event: WriteEvent,
    principal: SystemPrincipal,
    key: str,
    send: Callable[[AsyncConnection, PendingComposition], Awaitable[None]],
) -> None:
    """An outgoing hook's handling of a Composition it sends (the Epikrise, a PLO report): `send` each one
    the unit wrote, as `principal`, at the end of the unit of work (a transaction may write its recipient
    after it)."""
    pending = _composition_to_send(event, principal)
    if pending is None:
        return

    async def send_all(conn: AsyncConnection, items: list[PendingComposition]) -> None:
        for item in items:
            await send(conn, item)

    await at_unit_end(event.conn, key, send_all, [pending])
