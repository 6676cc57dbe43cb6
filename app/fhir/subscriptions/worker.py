"""The delivery worker: claims due outbox rows, sends R4 rest-hook notifications, records the outcome.

R4 rest-hook: without a payload, an empty POST to the endpoint; with payload application/fhir+json, the
endpoint is a service base and the resource version is sent as an update, PUT {endpoint}/{Type}/{id}
(R4 subscription-channel-type; HAPI does the same). A 2xx marks the row delivered; anything else is
retried with exponential backoff, and after the last attempt the row is failed and the subscription is
set to status "error" with an error message, through the engine (a new version, like any write).

What is sent is what the subscriber may read: each notified version is read through the engine's vread
as the principal that registered the subscription (StoredPrincipals), so scopes, consent blocks and care
relations apply and the read is audited before anything leaves. A version the subscriber may not read is
not notified at all, not even as an empty ping (which would tell that a matching resource changed): the
row is marked withheld and the refused read is in the audit trail.

Each claimed row is delivered in a task of its own, under an overall deadline, and the worker claims the
next rows of other subscriptions while it runs: a slow, hanging or broken endpoint delays only its own
subscription. Claims are leases written to the database, so a second server process (PostgreSQL, FOR
UPDATE SKIP LOCKED) never takes a row that is being delivered, and a row leased by a process that died is
taken over when its lease ends. Delivery is at least once. Logs name the subscription, status codes and
attempt counts; never the resource, its id or the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.interactions.read import vread
from app.fhir.interactions.update import update_in
from app.fhir.outcome import FhirError
from app.fhir.service import FhirService
from app.fhir.stored_principals import OpenAccess, StoredPrincipals
from app.fhir.subscriptions.config import SubscriptionConfig
from app.fhir.subscriptions.endpoints import EndpointPolicy
from app.fhir.subscriptions.spec import split_header
from app.fhir.subscriptions.subscriber import DELIVERY_PRINCIPAL
from app.fhir.subscriptions.transport import RefusedAddress, delivery_client
from app.store.subscriptions import Claimed, SubscriptionStore

log = logging.getLogger("helsebro.subscriptions")

FHIR_JSON = "application/fhir+json"
_PURGE_EVERY = 600.0  # seconds between purges of old delivered rows
# A refused read: the subscriber lacks the scope or access (403), the version is hidden from it by a
# consent block (404), or it is a deletion (410).
_NOT_READABLE = frozenset({403, 404, 410})


@dataclass(frozen=True)
class Outcome:
    status: int | None  # HTTP status of the delivery (of the refused read when withheld); None: no answer
    error: str | None  # None: delivered (or withheld)
    withheld: bool = False  # the subscriber may not read the version: nothing was sent
    final: bool = False  # retrying cannot help (the endpoint is no longer allowed): fail now

    @property
    def ok(self) -> bool:
        return self.error is None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    def __init__(
        self,
        svc: FhirService,
        store: SubscriptionStore,
        config: SubscriptionConfig,
        access: StoredPrincipals | None = None,
        endpoints: EndpointPolicy | None = None,
    ) -> None:
        self.svc = svc
        self.store = store
        self.config = config
        self.access: StoredPrincipals = access or OpenAccess()
        self.endpoints = endpoints or EndpointPolicy()
        # Endpoints on the allow-list are trusted as named; any other connects only to addresses a
        # subscriber may name (checked on every connection).
        self._trusted: httpx.AsyncClient | None = None
        self._guarded: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._next_purge = 0.0

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._trusted = delivery_client(self.config.timeout_seconds, guarded=False)
        self._guarded = delivery_client(self.config.timeout_seconds, guarded=True)
        self._task = asyncio.create_task(self._run(), name="subscription-delivery")

    def wake(self) -> None:
        """New outbox rows were committed: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, let the deliveries in progress finish (bounded by their deadline), then stop. A
        delivery cut short leaves its row leased; it is delivered again once the lease ends (at least once)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            await _finish(task, self.config.timeout_seconds + 5.0)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self.config.timeout_seconds + 5.0)
            for delivery in set(self._in_flight):
                await _finish(delivery, 0)
        for client in (self._trusted, self._guarded):
            if client is not None:
                await client.aclose()
        self._trusted = self._guarded = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before looking: a wake-up during the round below is not lost
            try:
                busy = await self._start_deliveries() > 0
                await self._purge()
            except Exception as exc:  # a database outage must not end delivery for good; try again later
                # The class only: database errors quote statement parameters (resource content, headers).
                log.error("subscription delivery round failed (%s)", type(exc).__name__)
                busy = False
            if busy or self._stopping:
                continue  # other subscriptions' rows may be due as well
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)

    # -- claiming ------------------------------------------------------------------------------------
    async def _start_deliveries(self) -> int:
        """Claim the due head rows of up to `batch` subscriptions (fewer while deliveries are running) and
        deliver each in its own task. Returns how many were started."""
        room = self.config.batch - len(self._in_flight)
        if room <= 0:
            return 0  # a finishing delivery wakes the loop
        now = _utcnow()
        async with self.svc.repo.reader() as conn:
            if not await self.store.any_due(conn, now):
                return 0  # idle: no write transaction (on SQLite it would take the database's write lock)
        token = uuid.uuid4().hex
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        async with self.svc.repo.writer() as conn:
            claimed = await self.store.claim(conn, now, lease_until, token, room)
        for item in claimed:
            task = asyncio.create_task(self._process(item, token), name="subscription-notification")
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # the subscription's next row may be waiting behind the one just finished

    async def _process(self, item: Claimed, token: str) -> None:
        try:
            outcome = await self._deliver(item)
        except Exception as exc:  # whatever one subscription's row does, it fails alone and is retried
            outcome = Outcome(None, type(exc).__name__)
        try:
            try:
                await self._record(item, token, outcome)
            except FhirError:
                # The Subscription cannot be written any more (e.g. a search parameter of its criteria
                # is gone), so it cannot be set to error: the row fails without it.
                await self._record(item, token, outcome, set_error=False)
        except Exception as exc:  # the row stays leased and is tried again when its lease ends
            log.error(
                "subscription %s: recording the outcome failed (%s)", item.subscription_id, type(exc).__name__
            )

    # -- one notification ----------------------------------------------------------------------------
    async def _deliver(self, item: Claimed) -> Outcome:
        if self.endpoints.refusal(item.endpoint) is not None:
            # Stored before the endpoint rules, or the allow-list changed since: never sent anywhere.
            return Outcome(None, "endpoint not allowed", final=True)
        read = await self._read(item)
        if isinstance(read, int):
            return Outcome(read, None, withheld=True)
        client = self._trusted if self.endpoints.allow_listed(item.endpoint) else self._guarded
        assert client is not None
        headers = dict(split_header(line) for line in item.headers)
        if item.payload:
            url = f"{item.endpoint.rstrip('/')}/{item.res_type}/{item.res_id}"
            headers["Content-Type"] = FHIR_JSON
            request = client.build_request("PUT", url, content=read, headers=headers)
        else:
            request = client.build_request("POST", item.endpoint, content=b"", headers=headers)
        try:
            # One deadline for the whole exchange: httpx's timeouts are per read, so an endpoint that
            # trickles its answer a byte at a time would never hit them.
            async with asyncio.timeout(self.config.timeout_seconds):
                response = await client.send(request, stream=True)
                await response.aclose()  # the body is not needed
        except TimeoutError:
            return Outcome(None, "timeout")
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, RefusedAddress):
                return Outcome(None, "endpoint resolves to a loopback or link-local address")
            return Outcome(None, type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Outcome(response.status_code, None)
        return Outcome(response.status_code, f"HTTP {response.status_code}")

    async def _read(self, item: Claimed) -> bytes | int:
        """The notified version as the subscriber reads it, or the status of the refused read. Returns
        only once the read's audit is stored: nothing is sent unaudited."""
        request_id = f"subscription-delivery-{item.id}"
        ctx = self.access.reader(item.registrant, self.svc.base_url, request_id)
        if ctx is None:
            return 403  # no principal on record (authentication on): nobody to read as
        try:
            row = await vread(self.svc, ctx, item.res_type, item.res_id, str(item.version))
        except FhirError as exc:
            if exc.status in _NOT_READABLE:
                return exc.status
            raise
        finally:
            await self.access.settle(ctx)
        assert row.content is not None  # vread refuses a deletion (410)
        return row.content

    async def _record(self, item: Claimed, token: str, outcome: Outcome, set_error: bool = True) -> None:
        now = _utcnow()
        async with self.svc.repo.writer() as conn:
            if outcome.withheld:
                assert outcome.status is not None
                await self.store.withheld(conn, item.id, token, outcome.status, now)
                log.info(
                    "subscription %s: notification withheld (the subscriber's read was refused: %s)",
                    item.subscription_id,
                    outcome.status,
                )
                return
            if outcome.ok:
                assert outcome.status is not None
                await self.store.delivered(conn, item.id, token, outcome.status, now)
                log.debug("subscription %s: delivered (HTTP %s)", item.subscription_id, outcome.status)
                return
            assert outcome.error is not None
            if outcome.final or item.attempts >= self.config.max_attempts:
                # One unit of work: the subscription's next row must not be claimed before it is in error.
                if await self.store.failed(conn, item.id, token, outcome.status, outcome.error) and set_error:
                    await self._set_error(conn, item, outcome.error)
                    log.warning(
                        "subscription %s: notification failed after %d attempts (%s); status set to error",
                        item.subscription_id,
                        item.attempts,
                        outcome.error,
                    )
                return
            delay = self.config.retry_delay(item.attempts)
            due = now + timedelta(seconds=delay)
            await self.store.retry(conn, item.id, token, due, outcome.status, outcome.error)
            log.info(
                "subscription %s: attempt %d failed (%s); next in %.1f s",
                item.subscription_id,
                item.attempts,
                outcome.error,
                delay,
            )

    async def _set_error(self, conn: AsyncConnection, item: Claimed, reason: str) -> None:
        """R4: a subscription whose notifications cannot be delivered goes to status "error", with why."""
        rtype = self.svc.resource_type("Subscription")
        current = await self.svc.repo.current(conn, "Subscription", item.subscription_id, for_update=True)
        if current is None or current.deleted or current.content is None:
            return
        resource = orjson.loads(current.content)
        if resource.get("status") != "active":
            return  # the client changed it meanwhile; its choice stands
        resource["status"] = "error"
        resource["error"] = f"Notification delivery failed after {item.attempts} attempts (last: {reason})"
        ctx = RequestContext(self.svc.base_url, DELIVERY_PRINCIPAL, request_id="subscription-delivery")
        await update_in(self.svc, ctx, conn, rtype, item.subscription_id, resource)

    async def _purge(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + _PURGE_EVERY
        before = _utcnow() - timedelta(hours=self.config.keep_delivered_hours)
        async with self.svc.repo.writer() as conn:
            await self.store.purge_delivered(conn, before)


async def _finish(task: asyncio.Task[None], within: float) -> None:
    """Wait for a task up to `within` seconds, then cancel it."""
    try:
        await asyncio.wait_for(asyncio.shield(task), within)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
