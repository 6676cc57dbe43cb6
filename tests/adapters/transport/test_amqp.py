"""The AMQP transport against a real RabbitMQ, on SQLite and PostgreSQL, with authentication on (the
transport acts as its SystemPrincipal): messages in go through the intake and are answered on the reply
queue, once per MsgId however often they come; the outbox is published once and marked; a broker that
drops the connection, or a server that stops, mid-stream loses nothing and stores nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from fastapi import FastAPI

from app.adapters.kith import intake
from app.adapters.kith.apprec import (
    AppRec,
    AppRecStatus,
    ReceivedMessage,
    build_apprec,
    parse_apprec,
    receipt_for,
)
from app.adapters.kith.dialogmelding import TYPE_STATUS, ReferralStatus, parse_dialogmelding
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import Organisation
from app.adapters.kith.routes import Reply, receive
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.transport import amqp
from app.adapters.transport.amqp import AmqpConfig, AmqpTransport
from app.config import Settings
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.outcome import Category, FhirError
from app.main import create_app
from tests.adapters.kith.conftest import fixture_bytes
from tests.adapters.transport.conftest import Queues, close_broker_connection
from tests.conftest import BASE, empty_tables, make_settings
from tests.databases import TestDatabase
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.referrals.test_operations_http import parameters

V2 = "henvisning_v2_nytilstand.xml"
V2_MSG_ID = b"6f1c2a8e-5b1d-4c3e-9a77-0d2f3b4c5d6e"
V2_DOCUMENT_ID = b"0b7e8f10-2a3b-4c5d-8e9f-a0b1c2d3e4f5"
TEST = SystemPrincipal("amqp-test", "the AMQP transport tests look at what was stored")
WAIT = 60.0


def config(broker: str, queues: Queues, **overrides: Any) -> AmqpConfig:
    values: dict[str, Any] = {
        "url": broker,
        "incoming_queue": queues.incoming,
        "reply_queue": queues.reply,
        "outgoing_exchange": "",
        "outgoing_routing_key": queues.outgoing,
        "prefetch": 4,
        "retry_seconds": 0.2,
        "outbox_poll_seconds": 0.2,
        "resend_seconds": 3600.0,
        "outbox_batch": 100,
        "max_sends": 6,
        "single_active_consumer": True,
        "reconnect_seconds": 0.5,
        "connection_name": queues.connection_name,
        **overrides,
    }
    return AmqpConfig(**values)


class SlowTransport(AmqpTransport):
    """Takes a while over each message, so a stream is still in hand when the connection goes; and notes
    which messages the broker delivered again."""

    redelivered: int = 0

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        self.redelivered += int(bool(message.redelivered))
        await asyncio.sleep(0.25)
        await super()._handle(message)


def slowed(
    handle: Callable[[AbstractIncomingMessage], Awaitable[None]],
) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    async def slow(message: AbstractIncomingMessage) -> None:
        await asyncio.sleep(0.25)
        await handle(message)

    return slow


@asynccontextmanager
async def running(
    app: FastAPI, cfg: AmqpConfig, kind: type[AmqpTransport] = AmqpTransport
) -> AsyncIterator[AmqpTransport]:
    transport = kind(app.state.engine, app.state.kith, cfg, BASE)
    transport.start()
    try:
        await asyncio.wait_for(transport.ready.wait(), WAIT)
        yield transport
    finally:
        await transport.stop()


def referral(number: int | None = None) -> tuple[bytes, str]:
    """The Henvisning fixture, or a copy with a MsgId and document of its own; and its MsgId."""
    data = fixture_bytes(V2)
    if number is None:
        return data, V2_MSG_ID.decode()
    msg_id = str(uuid.uuid4())
    data = data.replace(V2_MSG_ID, msg_id.encode()).replace(V2_DOCUMENT_ID, str(uuid.uuid4()).encode())
    return data, msg_id


async def publish(peer: AbstractRobustConnection, queue: str, body: bytes, reply_to: str | None) -> None:
    channel = await peer.channel()
    message = aio_pika.Message(
        body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, reply_to=reply_to, message_id=str(uuid.uuid4())
    )
    await channel.default_exchange.publish(message, routing_key=queue)
    await channel.close()


async def take(
    peer: AbstractRobustConnection, queue: str, until: Callable[[list[AbstractIncomingMessage]], bool]
) -> list[AbstractIncomingMessage]:
    """Messages from `queue` until `until` holds of those taken (or the wait runs out)."""
    channel = await peer.channel()
    source = await channel.get_queue(queue)
    taken: list[AbstractIncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + WAIT
    while not until(taken) and asyncio.get_running_loop().time() < deadline:
        message = await source.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
        else:
            taken.append(message)
    await channel.close()
    return taken


def apprecs(messages: list[AbstractIncomingMessage]) -> list[AppRec]:
    return [parse_apprec(parse_xml(m.body)) for m in messages]


def answered(count: int) -> Callable[[list[AbstractIncomingMessage]], bool]:
    """`count` different messages answered."""
    return lambda taken: len({a.original_id for a in apprecs(taken)}) >= count


def covering(
    wanted: set[str], before: list[AbstractIncomingMessage]
) -> Callable[[list[AbstractIncomingMessage]], bool]:
    """Every wanted MsgId answered, by the AppRecs taken before or now."""
    return lambda taken: wanted <= {a.original_id for a in apprecs(before + taken)}


async def depth(peer: AbstractRobustConnection, queue: str) -> int:
    channel = await peer.channel()
    declared = await channel.declare_queue(queue, passive=True)  # whatever its arguments
    await channel.close()
    return int(declared.declaration_result.message_count or 0)


def ctx() -> RequestContext:
    return RequestContext(BASE, TEST, "amqp-test")


async def apprec_back(peer: AbstractRobustConnection, queues: Queues, msg_id: str) -> None:
    """The receiver's AppRec (OK) for the message sent from here with `msg_id`, to our incoming queue."""
    received = ReceivedMessage(
        TYPE_STATUS,
        datetime.now().replace(microsecond=0),
        msg_id,
        Organisation("Helsebro"),
        Organisation("Fjordby legekontor"),
    )
    apprec = to_bytes(build_apprec(receipt_for(received, AppRecStatus.OK)))
    await publish(peer, queues.incoming, apprec, None)


async def no_longer(app: FastAPI, res_id: str, status: str) -> dict[str, Any]:
    """The Communication once its status is no longer `status` (as it is, when the wait runs out)."""
    for _ in range(200):
        record: dict[str, Any] = (
            await app.state.engine.read_resource(ctx(), f"Communication/{res_id}")
        ) or {}
        if record["status"] != status:
            break
        await asyncio.sleep(0.05)
    return record


async def received_ids(app: FastAPI) -> list[str]:
    """The MsgId of every received-message record (one per message taken in)."""
    category = f"{intake.MESSAGE_CATEGORY_SYSTEM}|received"
    records = await app.state.engine.search(ctx(), "Communication", [("category", category)], 1000)
    return [
        i["value"] for r in records for i in r["identifier"] if i["system"] == intake.RECEIVED_MSG_ID_SYSTEM
    ]


async def test_a_referral_is_stored_and_answered_on_the_reply_queue(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection
) -> None:
    body, msg_id = referral()
    async with running(secure_app, config(broker, queues)):
        await publish(peer, queues.incoming, body, queues.reply)
        (answer,) = await take(peer, queues.reply, answered(1))
    apprec = parse_apprec(parse_xml(answer.body))
    assert apprec.status is AppRecStatus.OK
    assert apprec.original_id == msg_id == parse_henvisning(body).msg_id
    assert answer.correlation_id == msg_id
    assert answer.message_id == apprec.id
    assert answer.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert await received_ids(secure_app) == [msg_id]
    assert len(await secure_app.state.engine.search(ctx(), "ServiceRequest", [], 10)) == 1


def _step(sample: Path) -> int:
    """New referrals first, then changes, then cancellations (as a sender would send them)."""
    name = sample.stem.lower()
    return 2 if name.endswith(("kansellering", "_c")) else 1 if name.endswith(("endring", "_m")) else 0


async def test_the_legacy_henvisning_samples_in_one_stream_are_taken_in_order_and_answered(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection, legacy: Path
) -> None:
    """The official samples (1.0, 1.1, 2.0) in one stream, changes and cancellations right behind their
    referrals: each is answered on the reply queue naming its MsgId, and none is refused."""
    samples = sorted((legacy / "samples" / "Henvisning").glob("*/*.xml"), key=lambda p: (_step(p), p.name))
    assert samples
    async with running(secure_app, config(broker, queues)):
        for sample in samples:
            await publish(peer, queues.incoming, sample.read_bytes(), queues.reply)
        by_msg_id = {parse_henvisning(s.read_bytes()).msg_id: s.name for s in samples}
        taken = await take(peer, queues.reply, covering(set(by_msg_id), []))
    answers = {a.original_id: a for a in apprecs(taken)}
    assert set(answers) == set(by_msg_id)
    refused = {
        by_msg_id[m]: [e.code for e in a.errors]
        for m, a in answers.items()
        if a.status is not AppRecStatus.OK
    }
    assert refused == {}


async def test_the_same_message_twice_is_stored_once_and_answered_alike(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection
) -> None:
    body, msg_id = referral()
    async with running(secure_app, config(broker, queues)):
        await publish(peer, queues.incoming, body, queues.reply)
        first = await take(peer, queues.reply, lambda taken: len(taken) == 1)
        await publish(peer, queues.incoming, body, None)  # no reply_to: the default reply queue (the same)
        second = await take(peer, queues.reply, lambda taken: len(taken) == 1)
    assert first[0].body == second[0].body  # the first AppRec, byte for byte
    assert await received_ids(secure_app) == [msg_id]
    assert len(await secure_app.state.engine.search(ctx(), "ServiceRequest", [], 10)) == 1


async def test_a_refused_message_is_answered_with_an_error_apprec_and_taken_off_the_queue(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection
) -> None:
    async with running(secure_app, config(broker, queues)):
        await publish(peer, queues.incoming, b"not a message", queues.reply)
        (answer,) = await take(peer, queues.reply, lambda taken: len(taken) == 1)
        assert await depth(peer, queues.incoming) == 0
    assert parse_apprec(parse_xml(answer.body)).status is AppRecStatus.REJECTED
    assert await received_ids(secure_app) == []


async def test_a_message_that_meets_a_concurrent_write_goes_back_to_the_queue_and_is_taken_later(
    secure_app: FastAPI,
    broker: str,
    queues: Queues,
    peer: AbstractRobustConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 412 from the store (e.g. an AppRec racing the outbox's mark of the same record) is not the
    message's fault: it is nacked back, not rejected, and the next delivery is taken in."""
    attempts: list[bool] = []

    async def conflicting_once(engine: Any, ctx: Any, kith: Any, body: bytes) -> Reply:
        attempts.append(True)
        if len(attempts) == 1:
            raise FhirError(Category.PRECONDITION, "version conflict")
        return await receive(engine, ctx, kith, body)

    monkeypatch.setattr(amqp, "receive", conflicting_once)
    body, msg_id = referral()
    async with running(secure_app, config(broker, queues)):
        await publish(peer, queues.incoming, body, queues.reply)
        (answer,) = await take(peer, queues.reply, answered(1))
    assert len(attempts) == 2
    assert parse_apprec(parse_xml(answer.body)).status is AppRecStatus.OK
    assert await received_ids(secure_app) == [msg_id]


async def test_the_outbox_is_published_once_marked_and_completed_by_the_apprec(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection
) -> None:
    engine = secure_app.state.engine
    async with running(secure_app, config(broker, queues)):
        body, _ = referral()
        await publish(peer, queues.incoming, body, queues.reply)
        await take(peer, queues.reply, answered(1))
        (service_request,) = await engine.search(ctx(), "ServiceRequest", [], 10)
        (task,) = await engine.search(ctx(), "Task", [], 10)
        msg_id, xml = str(uuid.uuid4()), b"<Dialogmelding>status</Dialogmelding>"
        record = intake.outgoing_message(
            TYPE_STATUS,
            msg_id,
            "Dialogmelding",
            xml,
            based_on=f"Task/{task['id']}",
            about=f"ServiceRequest/{service_request['id']}",
            subject=service_request["subject"],
        )
        created = await engine.create(ctx(), "Communication", record)
        (sent,) = await take(peer, queues.outgoing, lambda taken: len(taken) == 1)
        assert sent.body == xml
        assert sent.message_id == msg_id
        assert sent.type == TYPE_STATUS.code
        assert sent.reply_to == queues.incoming
        assert sent.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        await asyncio.sleep(1.0)  # five more looks at the outbox: nothing is sent again
        assert await depth(peer, queues.outgoing) == 0
        marked = (await engine.read_resource(ctx(), f"Communication/{created.stored.res_id}")) or {}
        assert marked["status"] == "preparation"
        assert "sent" in marked

        # The receiver's AppRec comes to our incoming queue and completes the record.
        await apprec_back(peer, queues, msg_id)
        done = await no_longer(secure_app, created.stored.res_id, "preparation")
    assert done["status"] == "completed"
    assert done["sent"] == marked["sent"]


async def test_a_broker_connection_closed_mid_stream_loses_nothing_and_stores_nothing_twice(
    secure_app: FastAPI, broker: str, queues: Queues, peer: AbstractRobustConnection
) -> None:
    messages = [referral(n) for n in range(24)]
    async with running(secure_app, config(broker, queues), SlowTransport) as transport:
        for body, _ in messages:
            await publish(peer, queues.incoming, body, queues.reply)
        early = await take(peer, queues.reply, answered(2))
        await asyncio.to_thread(close_broker_connection, queues.connection_name)  # some in hand, unacked
        closed_at = len(await received_ids(secure_app))
        rest = await take(peer, queues.reply, covering({msg_id for _, msg_id in messages}, early))
        assert isinstance(transport, SlowTransport)
        redelivered = transport.redelivered
    assert closed_at < len(messages)  # the connection went mid-stream
    assert redelivered > 0  # and what was in hand came again
    answers = apprecs(early + rest)
    assert {a.original_id for a in answers} == {msg_id for _, msg_id in messages}
    assert all(a.status is AppRecStatus.OK for a in answers)
    assert Counter(await received_ids(secure_app)) == Counter(msg_id for _, msg_id in messages)


def app_settings(
    db: TestDatabase, broker: str, queues: Queues, dev_key_file: Path | None, **overrides: Any
) -> Settings:
    """An app that runs the transport from its lifespan (with authentication on unless no key is given)."""
    auth: dict[str, Any] = (
        {"auth_mode": "jwt", "auth_dev_issuer": True, "auth_dev_key_file": str(dev_key_file)}
        if dev_key_file is not None
        else {}
    )
    return make_settings(
        db.url,
        amqp_url=broker,
        amqp_incoming_queue=queues.incoming,
        amqp_reply_queue=queues.reply,
        amqp_outgoing_routing_key=queues.outgoing,
        amqp_prefetch=3,
        amqp_reconnect_seconds=0.5,
        **{"amqp_outbox_poll_seconds": 0.2, **auth, **overrides},
    )


async def test_a_referral_status_message_is_published_when_its_step_commits_and_closed_by_the_apprec(
    backend: str,
    session_databases: dict[str, TestDatabase],
    broker: str,
    queues: Queues,
    peer: AbstractRobustConnection,
) -> None:
    """The whole way: a Henvisning in over AMQP, the `$receive` step over HTTP stores a Dialogmelding in the
    outbox, which goes out at once (the poll is far off), and the referrer's AppRec over AMQP closes it."""
    settings = app_settings(session_databases[backend], broker, queues, None, amqp_outbox_poll_seconds=600.0)
    app = create_app(settings)
    await empty_tables(app, backend)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        await asyncio.wait_for(app.state.amqp.ready.wait(), WAIT)
        body, msg_id = referral()
        await publish(peer, queues.incoming, body, queues.reply)
        await take(peer, queues.reply, answered(1))
        task = (await client.get("/Task")).json()["entry"][0]["resource"]
        step = await client.post(
            f"/Task/{task['id']}/$receive",
            content=orjson.dumps(parameters(owner=task["owner"])),
            headers=FHIR_JSON,
        )
        assert step.status_code == 200, step.text
        (sent,) = await take(peer, queues.outgoing, lambda taken: len(taken) == 1)
        status = parse_dialogmelding(parse_xml(sent.body))
        assert status.notes[0].status == ReferralStatus.RECEIVED.coded
        assert status.referral is not None
        assert status.referral.parent_id == msg_id
        assert sent.message_id == status.msg_id

        received = ReceivedMessage(
            TYPE_STATUS, status.gen_date, status.msg_id, status.sender, status.receiver
        )
        apprec = to_bytes(build_apprec(receipt_for(received, AppRecStatus.OK)))
        await publish(peer, queues.incoming, apprec, None)
        query = f"/Communication?category={intake.MESSAGE_CATEGORY_SYSTEM}|outgoing"
        for _ in range(200):
            (record,) = [e["resource"] for e in (await client.get(query)).json()["entry"]]
            if record["status"] != "preparation":
                break
            await asyncio.sleep(0.05)
    assert record["status"] == "completed"
    assert "sent" in record


async def test_a_server_restarted_mid_stream_loses_nothing_and_stores_nothing_twice(
    backend: str,
    session_databases: dict[str, TestDatabase],
    dev_key_file: Path,
    broker: str,
    queues: Queues,
    peer: AbstractRobustConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = app_settings(session_databases[backend], broker, queues, dev_key_file)
    messages = [referral(n) for n in range(20)]
    first = create_app(settings)
    await empty_tables(first, backend)
    async with first.router.lifespan_context(first):
        transport = first.state.amqp
        assert isinstance(transport, AmqpTransport)
        monkeypatch.setattr(transport, "_handle", slowed(transport._handle))  # still in hand at the stop
        await asyncio.wait_for(transport.ready.wait(), WAIT)
        for body, _ in messages:
            await publish(peer, queues.incoming, body, queues.reply)
        early = await take(peer, queues.reply, answered(2))
    # The server is down: what it had not taken in is still on the queue.
    assert await depth(peer, queues.incoming) > 0
    second = create_app(settings)
    async with second.router.lifespan_context(second):
        rest = await take(peer, queues.reply, covering({msg_id for _, msg_id in messages}, early))
        stored = await received_ids(second)
    assert {a.original_id for a in apprecs(early + rest)} == {msg_id for _, msg_id in messages}
    assert Counter(stored) == Counter(msg_id for _, msg_id in messages)


def test_without_amqp_url_there_is_no_transport() -> None:
    assert create_app(make_settings("sqlite+aiosqlite:///:memory:")).state.amqp is None


async def test_a_broker_down_at_start_is_waited_for_and_the_transport_stops_cleanly(
    secure_app: FastAPI, queues: Queues
) -> None:
    unreachable = config("amqp://guest:guest@127.0.0.1:1/", queues)  # nothing listens on port 1
    async with asyncio.timeout(10):
        transport = AmqpTransport(secure_app.state.engine, secure_app.state.kith, unreachable, BASE)
        transport.start()
        await asyncio.sleep(1.0)
        assert not transport.ready.is_set()
        assert transport._runner is not None
        assert not transport._runner.done()  # still trying
        await transport.stop()
