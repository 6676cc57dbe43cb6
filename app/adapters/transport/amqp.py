"""KITH messages over AMQP (RabbitMQ), for the national message service: on when AMQP_URL is set.

- In: every message on the durable incoming queue goes to the one intake (`routes.receive`, as the HTTP
  route and the import command) as the transport's SystemPrincipal. Its AppRec is published (persistent,
  publisher confirms) to the message's `reply_to` queue, else the default reply queue, and only then is the
  message acked: the intake has committed by then, so a crash before the ack redelivers the message and
  the intake answers the repeat from its MsgId record (the same AppRec, nothing stored twice). A refused
  message gets its error AppRec and is acked; a retryable failure (409/412/5xx, the database away) is
  nacked back to the queue after AMQP_RETRY_SECONDS; an AppRec for a message sent from here is recorded
  and acked; one the intake cannot take (unknown OriginalMsgId, malformed) is rejected without requeue
  (to the queue's dead-letter exchange when the broker has one).
- Out: the outbox (outgoing Communications, outbox.py) is polled through the engine; each due message is
  published (persistent, confirmed, mandatory) with its MsgId as message-id and our incoming queue as
  `reply_to`, so the receiver's AppRec comes back through the intake and completes the record. Only after
  the broker confirms is `sent` set; without an AppRec it is published again after AMQP_RESEND_SECONDS.

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
from aiormq.exceptions import AMQPError

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
            reconnect_seconds=settings.amqp_reconnect_seconds,
        )


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
        self._wake = asyncio.Event()  # an outgoing message was committed in this process

    def _ctx(self) -> RequestContext:
        return RequestContext(self.base_url, TRANSPORT, f"amqp-{uuid.uuid4().hex[:16]}")

    def watch_outbox(self, hooks: Hooks) -> None:
        """Publish a message written in this process as soon as its write commits, not at the next poll
        (which stays for other processes' writes and for resending)."""
        hooks.after_write.add(Stage.NOTIFY, self._written)

    async def _written(self, event: WriteEvent) -> None:
        if event.res_type == "Communication" and event.resource is not None and outbox.is_new(event.resource):
            Repository.after_commit(self._wake.set)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect and run in the background: a broker that is down at start is waited for, not fatal."""
        self._runner = asyncio.create_task(self._run(), name="amqp-transport")

    async def stop(self) -> None:
        """Stop taking messages, let those in hand finish (briefly), then close: anything unacked goes back
        to the queue."""
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):  # a lost connection has cancelled it already
                await self._queue.cancel(self._consumer_tag)
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
        config = self.config
        self.connection = await aio_pika.connect_robust(
            config.url,
            fail_fast=False,  # keep trying until the broker answers
            reconnect_interval=config.reconnect_seconds,
            client_properties={"connection_name": config.connection_name},
        )
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=config.prefetch)
        queue = await channel.declare_queue(config.incoming_queue, durable=True)
        if config.reply_queue:
            await channel.declare_queue(config.reply_queue, durable=True)
        out_channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        if config.outgoing_exchange:
            exchange = await out_channel.get_exchange(config.outgoing_exchange)  # the operator's: must exist
        else:
            await out_channel.declare_queue(config.outgoing_routing_key, durable=True)
            exchange = out_channel.default_exchange
        self._channel, self._queue, self._outbox_exchange = channel, queue, exchange
        self._consumer_tag = await queue.consume(self._on_message)
        self.ready.set()
        log.info("AMQP transport consuming %s", config.incoming_queue)
        while True:
            self._wake.clear()  # before looking: a wake-up during the round below is not lost
            try:
                await self.publish_outbox()
            except (TimeoutError, AMQPError, ConnectionError) as error:
                log.warning("AMQP outbox: broker unavailable (%s); trying again", type(error).__name__)
            except Exception:
                log.exception("AMQP outbox: publishing failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), config.outbox_poll_seconds)

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
    async def publish_outbox(self) -> int:
        """Publish every due outgoing message once, marking each after the broker's confirm; the count."""
        assert self._outbox_exchange is not None
        ctx = self._ctx()
        now = datetime.now(UTC)
        resend = timedelta(seconds=self.config.resend_seconds)
        published = 0
        for record in await self._pending(ctx, now):
            message = outbox.outgoing(record)
            if message is None or not outbox.due(record, now, resend):
                continue
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
            try:
                version = int(record["meta"]["versionId"])
                await self.engine.update(
                    ctx, "Communication", record["id"], outbox.handed_over(record, now), if_match=version
                )
            except FhirError as error:  # 412: the AppRec came first and completed it; else sent again later
                level = logging.INFO if error.status == 412 else logging.WARNING
                log.log(level, "AMQP outbox: handover not recorded (HTTP %d)", error.status)
            published += 1
        return published

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
