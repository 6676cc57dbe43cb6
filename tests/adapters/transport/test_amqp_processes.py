"""The AMQP transport with several server processes and without an answer, against a real RabbitMQ on
SQLite and PostgreSQL: of two transports on one incoming queue only one takes messages until it stops; two
looking at the outbox at once publish each message once; a queue the broker holds with other arguments
stops the transport with a clear error; and a message not answered is published again with its MsgId,
and given up after its last attempt."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from fastapi import FastAPI

from app.adapters.kith import intake
from app.adapters.kith.dialogmelding import TYPE_STATUS
from app.adapters.transport import outbox
from app.adapters.transport.amqp import AmqpConfig, AmqpTransport, OutboxRound, QueueConflict
from app.main import create_app
from tests.adapters.transport.conftest import Queues
from tests.adapters.transport.test_amqp import (
    WAIT,
    answered,
    app_settings,
    apprec_back,
    config,
    ctx,
    no_longer,
    publish,
    referral,
    running,
    take,
)
from tests.conftest import BASE, empty_tables
from tests.databases import TestDatabase

OUTGOING = f"{intake.MESSAGE_CATEGORY_SYSTEM}|{intake.OUTGOING_CATEGORY['code']}"


class Counting(AmqpTransport):
    """Notes the message-id of every message it takes in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken: list[str | None] = []

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        self.taken.append(message.message_id)
        await super()._handle(message)


async def started(app: FastAPI, cfg: AmqpConfig) -> Counting:
    transport = Counting(app.state.engine, app.state.kith, cfg, BASE)
    transport.start()
    await asyncio.wait_for(transport.ready.wait(), WAIT)
    return transport


async def published(peer: AbstractRobustConnection, queue: str, body: bytes, reply_to: str) -> str:
    """Publish like `publish`, with a message-id we know."""
    message_id = str(uuid.uuid4())
    channel = await peer.channel()
    message = aio_pika.Message(body, reply_to=reply_to, message_id=message_id)
    await channel.default_exchange.publish(message, routing_key=queue)
    await channel.close()
    return message_id


async def drain(peer: AbstractRobustConnection, queue: str) -> list[AbstractIncomingMessage]:
    """Everything on the queue now."""
    channel = await peer.channel()
    source = await channel.get_queue(queue)
    taken: list[AbstractIncomingMessage] = []
    while (message := await source.get(no_ack=True, fail=False)) is not None:
        taken.append(message)
    await channel.close()
    return taken


async def in_outbox(app: FastAPI, peer: AbstractRobustConnection, queues: Queues, count: int) -> list[str]:
    """A referral taken in (for a ServiceRequest and a patient to point at), then `count` outgoing status
    messages about it; their MsgIds."""
    engine = app.state.engine
    body, _ = referral()
    await publish(peer, queues.incoming, body, queues.reply)
    await take(peer, queues.reply, answered(1))
    (service_request,) = await engine.search(ctx(), "ServiceRequest", [], 10)
    msg_ids = [str(uuid.uuid4()) for _ in range(count)]
    for msg_id in msg_ids:
        record = intake.outgoing_message(
            TYPE_STATUS,
            msg_id,
            "Dialogmelding",
            b"<Dialogmelding/>",
            based_on=f"ServiceRequest/{service_request['id']}",
            about=f"ServiceRequest/{service_request['id']}",
            subject=service_request["subject"],
        )
        await engine.create(ctx(), "Communication", record)
    return msg_ids


async def outgoing_records(app: FastAPI, status: str | None = None) -> list[outbox.Json]:
    criteria = [("category", OUTGOING), *([("status", status)] if status else [])]
    return list(await app.state.engine.search(ctx(), "Communication", criteria, 100))


async def test_of_two_transports_on_one_queue_one_takes_every_message_until_it_stops(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection
) -> None:
    """The incoming queue has a single active consumer: a second server process waits, and takes over
    (in order) when the first stops, so a change never overtakes its referral in another process."""
    cfg = config(broker, queues)
    first = await started(secure_app, cfg)
    second = await started(secure_app, cfg)
    try:
        before = [await published(peer, queues.incoming, referral(n)[0], queues.reply) for n in range(4)]
        await take(peer, queues.reply, answered(4))
        assert first.taken == before
        assert second.taken == []
        await first.stop()
        after = [await published(peer, queues.incoming, referral(n)[0], queues.reply) for n in range(3)]
        await take(peer, queues.reply, answered(3))
        assert second.taken == after
        assert first.taken == before
    finally:
        await first.stop()
        await second.stop()


async def test_two_transports_looking_at_the_outbox_at_once_publish_each_message_once(
    secure_app: FastAPI,
    broker: str,
    queues: Queues,
    peer: AbstractRobustConnection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Both read the same due records (the barrier holds each until the other has read too); the claim
    written with If-Match lets one of them publish each message, the other leaves it."""
    caplog.set_level(logging.INFO, logger="app.adapters.transport.amqp")
    cfg = config(broker, queues, outbox_poll_seconds=600.0)  # no look but the ones below
    async with running(secure_app, cfg) as first, running(secure_app, cfg) as second:
        msg_ids = await in_outbox(secure_app, peer, queues, 5)
        both_read = asyncio.Barrier(2)
        for transport in (first, second):
            pending = transport._pending

            async def read_together(*args: Any, pending: Any = pending) -> list[outbox.Json]:
                found: list[outbox.Json] = await pending(*args)
                await both_read.wait()
                return found

            monkeypatch.setattr(transport, "_pending", read_together)
        rounds: tuple[OutboxRound, OutboxRound] = await asyncio.gather(
            first.publish_outbox(), second.publish_outbox()
        )
        sent = await drain(peer, queues.outgoing)
    assert sorted(m.message_id or "" for m in sent) == sorted(msg_ids)
    assert sum(r.published for r in rounds) == len(msg_ids)
    left = [r for r in caplog.records if r.getMessage().startswith("AMQP outbox: handover not recorded")]
    assert len(left) == len(msg_ids)  # every message was contested, and the loser left it
    records = await outgoing_records(secure_app)
    assert [outbox.attempts(r) for r in records] == [1] * len(msg_ids)


async def test_a_queue_declared_with_other_arguments_stops_the_transport_with_a_clear_error(
    secure_app: FastAPI,
    broker: str,
    queues: Queues,
    peer: AbstractRobustConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An operator's incoming queue without x-single-active-consumer: RabbitMQ refuses the declaration
    (PRECONDITION_FAILED). The transport logs why and what to do, and stops (no reconnect loop); with
    AMQP_SINGLE_ACTIVE_CONSUMER=false it takes the queue as it is."""
    plain = f"{queues.incoming}.plain"
    channel = await peer.channel()
    await channel.declare_queue(plain, durable=True)
    try:
        caplog.set_level(logging.ERROR, logger="app.adapters.transport.amqp")
        transport = AmqpTransport(
            secure_app.state.engine, secure_app.state.kith, config(broker, queues, incoming_queue=plain), BASE
        )
        transport.start()
        assert transport._runner is not None
        await asyncio.wait_for(asyncio.shield(transport._runner), WAIT)  # it ends by itself
        assert isinstance(transport.conflict, QueueConflict)
        assert transport.conflict.queue == plain
        assert not transport.ready.is_set()
        assert transport.connection is not None
        assert transport.connection.is_closed
        (logged,) = [r for r in caplog.records if plain in r.getMessage()]
        assert logged.levelno == logging.ERROR
        assert plain in logged.getMessage()
        assert "AMQP_SINGLE_ACTIVE_CONSUMER" in logged.getMessage()
        assert "inequivalent arg 'x-single-active-consumer'" in logged.getMessage()
        await transport.stop()

        as_it_is = config(broker, queues, incoming_queue=plain, single_active_consumer=False)
        async with running(secure_app, as_it_is):
            await publish(peer, plain, referral()[0], queues.reply)
            assert len(await take(peer, queues.reply, answered(1))) == 1
    finally:
        await channel.queue_delete(plain)
        await channel.close()


async def test_a_publish_the_broker_refuses_undoes_its_claim_and_waits_for_the_next_look(
    backend: str,
    session_databases: dict[str, TestDatabase],
    broker: str,
    queues: Queues,
    peer: AbstractRobustConnection,
) -> None:
    """`amq.direct` with no queue bound returns every message (mandatory): the claim is undone, so the
    record is as new again, and that undo does not wake the transport into trying again at once."""
    settings = app_settings(
        session_databases[backend],
        broker,
        queues,
        None,
        amqp_outgoing_exchange="amq.direct",
        amqp_outbox_poll_seconds=600.0,  # only the wake-up of the write below
    )
    app = create_app(settings)
    await empty_tables(app, backend)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.amqp.ready.wait(), WAIT)
        await in_outbox(app, peer, queues, 1)
        await asyncio.sleep(1.0)
        (record,) = await outgoing_records(app)
    assert record["meta"]["versionId"] == "3"  # written, claimed, undone: and no more
    assert "sent" not in record
    assert outbox.attempts(record) == 0
    assert record["status"] == "preparation"


async def test_a_message_due_again_is_published_again_with_the_same_msg_id(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection
) -> None:
    async with running(secure_app, config(broker, queues, resend_seconds=0.5)):
        (msg_id,) = await in_outbox(secure_app, peer, queues, 1)
        sent = await take(peer, queues.outgoing, lambda taken: len(taken) == 2)
    assert [m.message_id for m in sent] == [msg_id, msg_id]


async def test_a_message_never_answered_is_given_up_after_its_last_attempt_and_sent_no_more(
    secure_app: FastAPI,
    broker: str,
    queues: Queues,
    peer: AbstractRobustConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A receiver that never sends an AppRec: the message goes out AMQP_MAX_SENDS times, then its record is
    `not-done` saying so (a search finds it), it is counted, and nothing more is published. An AppRec that
    still comes completes it."""
    caplog.set_level(logging.WARNING, logger="app.adapters.transport.amqp")
    cfg = config(broker, queues, resend_seconds=0.3, max_sends=3, outbox_poll_seconds=0.1)
    async with running(secure_app, cfg):
        (msg_id,) = await in_outbox(secure_app, peer, queues, 1)
        for _ in range(200):
            if await outgoing_records(secure_app, "not-done"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # ten more looks: nothing is published again
        sent = await drain(peer, queues.outgoing)
        (failed,) = await outgoing_records(secure_app, "not-done")
        assert await outgoing_records(secure_app, "preparation") == []

        await apprec_back(peer, queues, msg_id)
        late = await no_longer(secure_app, failed["id"], "not-done")
    assert [m.message_id for m in sent] == [msg_id] * 3
    assert failed["statusReason"] == {"text": "Ingen applikasjonskvittering mottatt etter 3 sendeforsøk"}
    assert outbox.attempts(failed) == 3
    counted = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert counted == ["AMQP outbox: 1 message(s) given up without an AppRec"]
    assert late["status"] == "completed"
    assert "statusReason" not in late
