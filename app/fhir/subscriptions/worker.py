"""The delivery worker: claims due outbox rows, sends R4 rest-hook notifications, records the outcome.

R4 rest-hook: without a payload, an empty POST to the endpoint; with payload application/fhir+json, the
endpoint is a service base and the resource version is sent as an update, PUT {endpoint}/{Type}/{id}
(R4 subscription-channel-type; HAPI does the same). A 2xx marks the row delivered; anything else is
retried with exponential backoff, and after the last attempt the row is failed and the subscription is
set to status "error" with an error message, through the engine (a new version, like any write).

Claims are leases written to the database, so a second server process (PostgreSQL, FOR UPDATE SKIP
LOCKED) never takes a row that is being delivered, and a row leased by a process that died is taken over
when its lease ends. Delivery is at least once. Logs name the subscription, status codes and attempt
counts; never the resource, its id or the endpoint.
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

from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.interactions.update import update_in
from app.fhir.service import FhirService
from app.fhir.subscriptions.config import SubscriptionConfig
from app.fhir.subscriptions.spec import split_header
from app.store.subscriptions import Claimed, SubscriptionStore

log = logging.getLogger("helsebro.subscriptions")

FHIR_JSON = "application/fhir+json"
# The worker records a subscription's failure on it (status "error") on the server's own account.
DELIVERY_PRINCIPAL = SystemPrincipal("subscription-delivery", "mark a subscription whose delivery failed")
_PURGE_EVERY = 600.0  # seconds between purges of old delivered rows


@dataclass(frozen=True)
class Outcome:
    status: int | None  # HTTP status, None when no response came back
    error: str | None  # None: delivered

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
    ) -> None:
        self.svc = svc
        self.store = store
        self.config = config
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._next_purge = 0.0

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="subscription-delivery")

    def wake(self) -> None:
        """New outbox rows were committed: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Finish the round in progress (bounded by the request timeout), then stop. A round cut short
        leaves its rows leased; they are delivered again once the lease ends (at least once)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), self.config.timeout_seconds + 5.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before looking: a wake-up during the round below is not lost
            try:
                busy = await self.run_once() > 0
                await self._purge()
            except Exception as exc:  # a database outage must not end delivery for good; try again later
                # The class only: database errors quote statement parameters (resource content, headers).
                log.error("subscription delivery round failed (%s)", type(exc).__name__)
                busy = False
            if busy or self._stopping:
                continue  # a subscription's next row may be waiting behind the one just delivered
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)

    # -- one round -----------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim, deliver and record up to `batch` notifications (one per subscription). Returns how many."""
        now = _utcnow()
        async with self.svc.repo.reader() as conn:
            if not await self.store.any_due(conn, now):
                return 0  # idle: no write transaction (on SQLite it would take the database's write lock)
        token = uuid.uuid4().hex
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        async with self.svc.repo.writer() as conn:
            claimed = await self.store.claim(conn, now, lease_until, token, self.config.batch)
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(item) for item in claimed))
        for item, outcome in zip(claimed, outcomes, strict=True):
            try:
                await self._record(item, token, outcome)
            except Exception as exc:  # the row stays leased and is tried again when its lease ends
                log.error(
                    "subscription %s: recording the outcome failed (%s)",
                    item.subscription_id,
                    type(exc).__name__,
                )
        return len(claimed)

    async def _deliver(self, item: Claimed) -> Outcome:
        assert self._client is not None
        headers = dict(split_header(line) for line in item.headers)
        if item.payload and item.content is not None:
            url = f"{item.endpoint.rstrip('/')}/{item.res_type}/{item.res_id}"
            headers["Content-Type"] = FHIR_JSON
            request = self._client.build_request("PUT", url, content=item.content, headers=headers)
        else:
            request = self._client.build_request("POST", item.endpoint, content=b"", headers=headers)
        try:
            response = await self._client.send(request)
            await response.aclose()
        except httpx.HTTPError as exc:
            return Outcome(None, type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Outcome(response.status_code, None)
        return Outcome(response.status_code, f"HTTP {response.status_code}")

    async def _record(self, item: Claimed, token: str, outcome: Outcome) -> None:
        now = _utcnow()
        async with self.svc.repo.writer() as conn:
            if outcome.ok:
                assert outcome.status is not None
                await self.store.delivered(conn, item.id, token, outcome.status, now)
                log.debug("subscription %s: delivered (HTTP %s)", item.subscription_id, outcome.status)
                return
            assert outcome.error is not None
            if item.attempts >= self.config.max_attempts:
                if await self.store.failed(conn, item.id, token, outcome.status, outcome.error):
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
