"""Storing a message made from a FHIR write: the one path of every outgoing hook (Dialogmelding, Epikrise,
e-resept, PLO).

A write hook turns the resource just written into a legacy message; `store_outgoing` checks it against its
XSD and stores it as the outgoing record (`intake.outgoing_message`) in the write's own unit of work, so the
message and the write that made it commit together or not at all. A message that does not validate refuses
the write (422): a legacy system would refuse it too, and the writer can still correct it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.kith.intake import outgoing_message
from app.adapters.kith.model import Coded
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.outcome import Category, FhirError
from app.fhir.service import WriteResult

Json = dict[str, Any]


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
) -> WriteResult:
    """Validate the message `root` made from the resource `made_from` ("Type/id") and store it as an
    outgoing message record (`basedOn` and `about` that resource) with the write's unit of work `conn`."""
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
    )
    return await engine.create(ctx, "Communication", record, conn=conn)
