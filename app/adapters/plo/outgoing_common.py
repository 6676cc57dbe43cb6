"""What the outgoing PLO hooks share (Pasientlogistikk: `outgoing.py`, reports: `report_outgoing.py`):
the messages sent about a resource read back (`kith.outgoing.sent_about`: the records `basedOn` it, each
later one `partOf` the one before), a message checked and stored as the next record of that chain
(`kith.outgoing.store_outgoing`), the Endring and the Kansellering of a message sent, and the 422 of a
write that cannot become a valid message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Organisation, OriginalReference
from app.adapters.kith.outgoing import read_sent, sent_about, store_outgoing
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.adapters.plo._common import check_patient
from app.adapters.plo.build import UnbuildableError, build_plo
from app.adapters.plo.model import Kind, PloMessage
from app.adapters.plo.outgoing_plan import Sent
from app.adapters.plo.parse import parse_plo
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.outcome import Category, FhirError
from app.resources.referrals.taskjson import OSLO

Json = dict[str, Any]


def new_msg_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(OSLO).replace(tzinfo=None, microsecond=0)  # KITH times: local, no offset


def in_conversation(msg: PloMessage, kind: Kind, last: PloMessage) -> PloMessage:
    """`msg` as an Endring or Kansellering of the conversation whose last message is `last`."""
    return replace(msg, kind=kind, conversation=OriginalReference(last.msg_id, last.conversation_id))


def unchanged(msg: PloMessage, last: Sent) -> bool:
    """The message says nothing the last one sent did not: the same XML but for its envelope."""
    before = last.message
    same = replace(
        msg,
        msg_id=before.msg_id,
        gen_date=before.gen_date,
        issue_date=before.issue_date,
        kind=before.kind,
        conversation=before.conversation,
    )
    return to_bytes(build_plo(same)) == last.xml


@dataclass
class Chain:
    """The messages sent about one resource, and the record the next one follows."""

    made_from: str
    sent: list[Sent]
    head: str | None


@dataclass(frozen=True)
class PloOutbox:
    engine: Engine
    validator: XsdValidator | None
    own: Organisation  # the sender when the resource names none

    TITLE: ClassVar[str] = "PLO"  # the records' title: "<TITLE>: <message type>"

    def _refuse(self, made_from: str, why: str) -> FhirError:
        return FhirError(
            Category.UNPROCESSABLE,
            f"{made_from} is for an organisation with a HER-id (sent as PLO {self.TITLE}) and cannot be "
            f"one: {why}",
            "business-rule",
        )

    def _check(self, made_from: str, msg: PloMessage) -> etree._Element:
        """The message as XML, or the write refused (422) naming what it lacks."""
        try:
            check_patient(msg)
            return build_plo(msg)
        except (KithError, UnbuildableError) as error:
            raise self._refuse(
                made_from, error.message if isinstance(error, KithError) else str(error)
            ) from None

    async def _chain(self, conn: AsyncConnection, ctx: RequestContext, made_from: str) -> Chain:
        records = await sent_about(self.engine, ctx, conn, made_from, self.TITLE)
        sent = [read_sent(record, parse_plo) for record in records]
        return Chain(made_from, sent, f"Communication/{records[-1]['id']}" if records else None)

    async def _store(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        chain: Chain,
        msg: PloMessage,
        subject: Json | None,
        sender: Json | None,
        recipients: list[Json],
    ) -> None:
        """Check the message and store it as the next record of the chain."""
        root = self._check(chain.made_from, msg)
        display = msg.msg_type.display
        result = await store_outgoing(
            self.engine,
            ctx,
            conn,
            self.validator,
            root,
            msg_type=msg.msg_type,
            msg_id=msg.msg_id,
            title=f"{self.TITLE}: {display}" if display else self.TITLE,
            made_from=chain.made_from,
            subject=subject,
            sender=sender,
            recipients=recipients,
            part_of=chain.head,
        )
        chain.head = f"Communication/{result.stored.res_id}"

    async def _cancel(
        self, conn: AsyncConnection, ctx: RequestContext, chain: Chain, last: Sent, subject: Json | None
    ) -> None:
        """The Kansellering of a conversation: its last message again, kind C, to whom it went."""
        when = now()
        msg = replace(last.message, msg_id=new_msg_id(), gen_date=when, issue_date=when)
        msg = in_conversation(msg, Kind.CANCEL, last.message)
        record = last.record
        await self._store(conn, ctx, chain, msg, subject, record.get("sender"), record.get("recipient", []))
