"""KITH messages over AMQP (RabbitMQ), for the national message service: on when AMQP_URL is set.

- In: every message on the durable incoming queue (a single active consumer: of several processes one takes
  the messages, so they stay in order, and the next takes over when it stops) goes to the one intake
  (`routes.receive`, as the HTTP route and the import command) as the transport's SystemPrincipal. Its AppRec
  is published (persistent, publisher confirms) to the message's `reply_to` queue, else the default reply
  queue, and only then is the message acked: the intake has committed by then, so a crash before the ack
  redelivers the message and the intake answers the repeat from its MsgId record (the same AppRec, nothing
  stored twice). A refused message gets its error AppRec and is acked; a retryable failure (409/412/5xx, the
  database away) is nacked back to the queue after AMQP_RETRY_SECONDS; an AppRec for a message sent from here
  is recorded and acked; one the intake cannot take (unknown OriginalMsgId, malformed) is rejected without
  requeue (to the queue's dead-letter exchange when the broker has one).
- Out: the outbox (outgoing Communications, outbox.py) is polled through the engine; each due message is
  claimed on its record with If-Match (`sent`, the attempt counted: of several processes only one wins) and
  published (persistent, confirmed, mandatory) with its MsgId as message-id and our incoming queue as
  `reply_to`, so the receiver's AppRec comes back through the intake and completes the record. A publish
  that fails undoes its claim; without an AppRec the message is published again after
  AMQP_RESEND_SECONDS, and after AMQP_MAX_SENDS attempts it is given up (`not-done`, for an operator).

A robust connection reconnects and restores its queues and consumers; whatever was unacked when the
connection or the server went away is redelivered by the broker. Nothing from a message body is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.abc import FieldTable
from aiormq.exceptions import AMQPError, ChannelPreconditionFailed

from app.adapters.kith.apprec import parse_apprec
from app.adapters.kith.errors import KithError
from app.adapters.kith.routes import KithConfig, receive
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.transport import outbox
from app.config import Settings
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Hooks, Stage, WriteEvent
from app.fhir.interactions.search import SearchRequest
from app.fhir.outcome import FhirError
from app.store.repository import Repository

log = logging.getLogger(__name__)
TRANSPORT = SystemPrincipal("amqp-transport", "KITH messages to and from the national message service (AMQP)")
XML = "application/xml"
_STOP_WAIT_SECONDS = 10.0  # how long stop() lets messages in hand finish before closing the connection
_PUBLISH_TIMEOUT_SECONDS = 30.0  # a confirm that never comes is a failed publish (not acked, not marked)


@dataclass(frozen=True)
class AmqpConfig:
    url: str
    incoming_queue: str
    reply_queue: str  # for an incoming message without reply_to
    outgoing_exchange: str  # "" is the default exchange: the routing key names a queue
    outgoing_routing_key: str
    prefetch: int
    retry_seconds: float
    outbox_poll_seconds: float
    resend_seconds: float
    outbox_batch: int
    max_sends: int = 6
    single_active_consumer: bool = True
    reconnect_seconds: float = 5.0
    connection_name: str = "helsebro"

    @classmethod
    def from_settings(cls, settings: Settings) -> AmqpConfig:
        return cls(
            url=settings.amqp_url.get_secret_value(),
            incoming_queue=settings.amqp_incoming_queue,
            reply_queue=settings.amqp_reply_queue,
            outgoing_exchange=settings.amqp_outgoing_exchange,
            outgoing_routing_key=settings.amqp_outgoing_routing_key,
            prefetch=settings.amqp_prefetch,
            retry_seconds=settings.amqp_retry_seconds,
            outbox_poll_seconds=settings.amqp_outbox_poll_seconds,
            resend_seconds=settings.amqp_resend_seconds,
            outbox_batch=settings.amqp_outbox_batch,
            max_sends=settings.amqp_max_sends,
            single_active_consumer=settings.amqp_single_active_consumer,
            reconnect_seconds=settings.amqp_reconnect_seconds,
        )


class QueueConflict(Exception):
    """A queue exists on the broker with other arguments than the transport declares it with (RabbitMQ
    refuses the declaration with PRECONDITION_FAILED): an operator's decision, so the transport stops."""

    def __init__(self, queue: str, reply: str) -> None:
        super().__init__(
            f"AMQP queue {queue!r} exists with other arguments than the transport declares ({reply}); "
            "declare it with the same arguments (x-single-active-consumer: true for the incoming queue, "
            "unless AMQP_SINGLE_ACTIVE_CONSUMER=false; anything else, such as a dead-letter exchange, by a "
            "policy), or set AMQP_SINGLE_ACTIVE_CONSUMER to match it. The AMQP transport is not running; "
            "the HTTP intake is"
        )
        self.queue = queue


async def _declare(channel: AbstractChannel, name: str, arguments: FieldTable | None = None) -> AbstractQueue:
    """A durable queue; one that exists with other arguments is a QueueConflict (the channel is closed)."""
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    except ChannelPreconditionFailed as error:
        raise QueueConflict(name, str(error.args[0] if error.args else error)) from error


@dataclass
class OutboxRound:
    """What one look at the outbox did."""

    published: int = 0
    given_up: int = 0


def _retryable(status: int) -> bool:
    """A conflict with a concurrent write or a storage fault: the same message may well succeed later."""
    return status in (409, 412) or status >= 500


def _apprec_ids(apprec: bytes) -> tuple[str | None, str | None]:
    """The AppRec's own MsgId and the MsgId it answers (for the AMQP message-id and correlation-id)."""
    try:
        parsed = parse_apprec(parse_xml(apprec))
    except KithError:
        return None, None
    return parsed.id, parsed.original_id


class AmqpTransport:
    """The consumer of the incoming queue and the publisher of the outbox, on one robust connection."""

    def __init__(self, engine: Engine, kith: KithConfig, config: AmqpConfig, base_url: str = "") -> None:
        self.engine = engine
        self.kith = kith
        self.config = config
        self.base_url = base_url
        self.connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None  # consumer and AppRecs
        self._outbox_exchange: AbstractExchange | None = None  # on a channel of its own
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_hand: set[asyncio.Task[None]] = set()
        # One message at a time, in delivery order: a change or cancellation never overtakes its referral
        # (the prefetch keeps the next ones at hand; the lock's waiters are served first come, first served).
        self._in_order = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()  # connected, queues declared, consuming
        self.conflict: QueueConflict | None = None  # why the transport stopped by itself, for the operator
        self._wake = asyncio.Event()  # an outgoing message was committed in this process

    def _ctx(self) -> RequestContext:
        return RequestContext(self.base_url, TRANSPORT, f"amqp-{uuid.uuid4().hex[:16]}")

    def watch_outbox(self, hooks: Hooks) -> None:
        """Publish a message written in this process as soon as its write commits, not at the next poll
        (which stays for other processes' writes and for resending)."""
        hooks.after_write.add(Stage.NOTIFY, self._written)

    async def _written(self, event: WriteEvent) -> None:
        # Not for the transport's own writes: undoing the claim of a failed publish makes a record new
        # again, and waking for it would retry at once, in a loop while the broker keeps refusing.
        if event.ctx.principal is TRANSPORT or event.res_type != "Communication" or event.resource is None:
            return
        if outbox.is_new(event.resource):
            Repository.after_commit(self._wake.set)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect and run in the background: a broker that is down at start is waited for, not fatal."""
        self._runner = asyncio.create_task(self._run(), name="amqp-transport")

    async def stop(self) -> None:
        """Stop taking messages, let those in hand finish (briefly), then close: anything unacked goes back
        to the queue."""
        if self._queue is not None and self._consumer_tag is not None:
            # Once: a robust channel whose connection is closed would wait for it to come back.
            consumer_tag, self._consumer_tag = self._consumer_tag, None
            with contextlib.suppress(Exception):  # a lost connection has cancelled it already
                await self._queue.cancel(consumer_tag)
        if self._in_hand:
            await asyncio.wait(self._in_hand, timeout=_STOP_WAIT_SECONDS)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self.connection is not None:
            await self.connection.close()
        self.ready.clear()

    async def _run(self) -> None:
        try:
            await self._connect_and_consume()
        except QueueConflict as conflict:
            # Not retried: the broker would refuse every attempt the same way until an operator acts.
            log.error("%s", conflict)
            self.conflict = conflict
            if self.connection is not None:
                await self.connection.close()
            return
        await self._publish_forever()

    async def _connect_and_consume(self) -> None:
        config = self.config
        self.connection = await aio_pika.connect_robust(
            config.url,
            fail_fast=False,  # keep trying until the broker answers
            reconnect_interval=config.reconnect_seconds,
            client_properties={"connection_name": config.connection_name},
        )
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=config.prefetch)
        # A single active consumer: with several server processes the broker gives every message to one of
        # them, in order, and the next one takes over when it stops (the in-order lock orders one process).
        arguments: FieldTable | None = (
            {"x-single-active-consumer": True} if config.single_active_consumer else None
        )
        queue = await _declare(channel, config.incoming_queue, arguments)
        if config.reply_queue:
            await _declare(channel, config.reply_queue)
        out_channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        if config.outgoing_exchange:
            exchange = await out_channel.get_exchange(config.outgoing_exchange)  # the operator's: must exist
        else:
            await _declare(out_channel, config.outgoing_routing_key)
            exchange = out_channel.default_exchange
        self._channel, self._queue, self._outbox_exchange = channel, queue, exchange
        self._consumer_tag = await queue.consume(self._on_message)
        self.ready.set()
        log.info("AMQP transport consuming %s", config.incoming_queue)

    async def _publish_forever(self) -> None:
        while True:
            self._wake.clear()  # before looking: a wake-up during the round below is not lost
            try:
                await self.publish_outbox()
            except (TimeoutError, AMQPError, ConnectionError) as error:
                log.warning("AMQP outbox: broker unavailable (%s); trying again", type(error).__name__)
            except Exception:
                log.exception("AMQP outbox: publishing failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.outbox_poll_seconds)

    # -- in ---------------------------------------------------------------------------------------------
    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_hand.add(task)
        try:
            async with self._in_order:
                await self._handle(message)
        except (AMQPError, ConnectionError) as error:
            # The channel went away before the ack: the broker redelivers, and the intake answers again.
            log.warning("AMQP message left unacknowledged (%s); it will be redelivered", type(error).__name__)
        finally:
            if task is not None:
                self._in_hand.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            reply = await receive(self.engine, self._ctx(), self.kith, message.body)
        except FhirError as error:
            # 409/412: a concurrent write, e.g. an AppRec racing the outbox's mark on the same record
            if _retryable(error.status):
                await self._retry(message, f"HTTP {error.status}")
            else:  # an AppRec answering nothing sent from here, a malformed one, a refused principal
                log.warning("AMQP message rejected: %s (HTTP %d)", error.category.value, error.status)
                await message.reject(requeue=False)
            return
        except Exception as error:  # the database away, a timeout: worth trying again
            await self._retry(message, type(error).__name__)
            return
        if _retryable(reply.status):
            await self._retry(message, f"HTTP {reply.status}")
            return
        if reply.apprec is not None:
            await self._answer(message, reply.apprec)
        await message.ack()

    async def _retry(self, message: AbstractIncomingMessage, why: str) -> None:
        log.warning("AMQP message not taken (%s); back to the queue in %ss", why, self.config.retry_seconds)
        await asyncio.sleep(self.config.retry_seconds)  # no hot loop over a message that keeps failing
        await message.nack(requeue=True)

    async def _answer(self, message: AbstractIncomingMessage, apprec: bytes) -> None:
        """Publish the AppRec (confirmed) before the message is acked."""
        assert self._channel is not None
        apprec_id, original_id = _apprec_ids(apprec)
        reply_to = message.reply_to or self.config.reply_queue
        if not reply_to:
            log.warning("AMQP message without reply_to and no AMQP_REPLY_QUEUE: its AppRec stays stored")
            return
        answer = aio_pika.Message(
            apprec,
            content_type=XML,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=apprec_id,
            correlation_id=original_id or message.message_id,
            type="APPREC",
            timestamp=datetime.now(UTC),
            app_id="helsebro",
        )
        try:
            await self._channel.default_exchange.publish(
                answer, routing_key=reply_to, timeout=_PUBLISH_TIMEOUT_SECONDS
            )
        except aio_pika.exceptions.PublishError:
            # No such reply queue: requeueing would loop forever; a resend of the message gets the AppRec.
            log.warning("AMQP reply queue does not exist; the AppRec stays stored for a resend")

    # -- out --------------------------------------------------------------------------------------------
    async def publish_outbox(self) -> OutboxRound:
        """Publish every due outgoing message once, each claimed on its record first; give up those sent
        AMQP_MAX_SENDS times without an AppRec. What was done, counted."""
        ctx = self._ctx()
        now = datetime.now(UTC)
        resend = timedelta(seconds=self.config.resend_seconds)
        done = OutboxRound()
        for record in await self._pending(ctx, now):
            message = outbox.outgoing(record)
            if message is None or not outbox.due(record, now, resend):
                continue
            if outbox.exhausted(record, self.config.max_sends):
                done.given_up += await self._give_up(ctx, record)
            else:
                done.published += await self._publish(ctx, record, message, now)
        if done.given_up:
            log.warning("AMQP outbox: %d message(s) given up without an AppRec", done.given_up)
        return done

    async def _write(self, ctx: RequestContext, record: outbox.Json, what: str) -> outbox.Json | None:
        """Update an outbox record guarded by the version it was read at; None when another writer came
        first (an AppRec, or another process claiming the same message): then this one leaves it."""
        try:
            written = await self.engine.update(
                ctx, "Communication", record["id"], record, if_match=int(record["meta"]["versionId"])
            )
        except FhirError as error:
            level = logging.INFO if error.status in (409, 412) else logging.WARNING
            log.log(level, "AMQP outbox: %s not recorded (HTTP %d)", what, error.status)
            if error.status in (409, 412):
                return None
            raise
        stored: outbox.Json = orjson.loads(written.content)
        return stored

    async def _publish(
        self, ctx: RequestContext, record: outbox.Json, message: outbox.Outgoing, now: datetime
    ) -> int:
        """Claim the handover on the record, then publish; a publish that fails undoes the claim, so the
        message is tried again at the next look. 1 when published, 0 when another writer had it."""
        assert self._outbox_exchange is not None
        claim = await self._write(ctx, outbox.claimed(record, now), "handover")
        if claim is None:
            return 0
        try:
            await self._outbox_exchange.publish(
                aio_pika.Message(
                    message.xml,
                    content_type=XML,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.msg_id,
                    type=message.msg_type,
                    reply_to=self.config.incoming_queue,  # the receiver's AppRec comes to our intake
                    timestamp=now,
                    app_id="helsebro",
                ),
                routing_key=self.config.outgoing_routing_key,
                timeout=_PUBLISH_TIMEOUT_SECONDS,
            )
        except BaseException:
            # Not handed over: back to how it was (a failure here leaves it for AMQP_RESEND_SECONDS).
            undo = {**record, "meta": claim["meta"]}
            with contextlib.suppress(Exception):
                await asyncio.shield(self._write(ctx, undo, "undoing a failed handover"))
            raise
        return 1

    async def _give_up(self, ctx: RequestContext, record: outbox.Json) -> int:
        """Mark a message sent AMQP_MAX_SENDS times without an AppRec `not-done`; 1 when marked."""
        return int(await self._write(ctx, outbox.given_up(record), "giving up") is not None)

    async def _pending(self, ctx: RequestContext, now: datetime) -> list[outbox.Json]:
        """Never sent, then sent long enough ago without an AppRec: a page of AMQP_OUTBOX_BATCH of each,
        oldest first (the rest next time), so messages awaiting their AppRec never crowd out new ones."""
        cutoff = (now - timedelta(seconds=self.config.resend_seconds)).isoformat()
        found: list[outbox.Json] = []
        for when in (("sent:missing", "true"), ("sent", f"le{cutoff}")):
            pairs = [
                *outbox.PENDING_CRITERIA,
                when,
                ("_sort", "_lastUpdated"),
                ("_count", str(self.config.outbox_batch)),
            ]
            request = SearchRequest(("Communication",), pairs, "Communication", strict=True)
            bundle = orjson.loads(await self.engine.search_bundle(ctx, request))
            found += [entry["resource"] for entry in bundle.get("entry", [])]
        return found
