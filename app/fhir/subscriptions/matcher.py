"""The write hooks of subscriptions: check Subscription resources, keep their delivery fields, and put one
outbox row per matching subscription into every write's own unit of work.

The outbox row is written in the same transaction as the resource, so a rolled-back write never notifies
and a committed one is never lost. Matching runs the subscription's criteria as a search restricted to
the written resource, on the write's connection (where its new index rows are already visible).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.hooks import WriteEvent
from app.fhir.outcome import FhirError
from app.fhir.search.criteria import Criteria
from app.fhir.search.valuesets import resolve_value_sets
from app.fhir.service import FhirService, now_ms
from app.fhir.stored_principals import OpenAccess, StoredPrincipals
from app.fhir.subscriptions.endpoints import EndpointPolicy
from app.fhir.subscriptions.spec import check_subscription, parse_subscription_criteria
from app.fhir.subscriptions.subscriber import DELIVERY_PRINCIPAL
from app.store.query import IdIn
from app.store.repository import Repository
from app.store.subscriptions import SubscriptionRow, SubscriptionStore
from app.store.visibility import Unrestricted

# Whether a write matches a subscription's criteria is decided over every resource; what is delivered is
# decided with the subscriber's access at delivery.
CRITERIA_MATCH = Unrestricted("subscription criteria are matched against every write")

log = logging.getLogger("helsebro.subscriptions")


@dataclass(frozen=True)
class ActiveSubscription:
    pk: int
    res_id: str
    criteria: Criteria


class SubscriptionMatcher:
    def __init__(
        self,
        svc: FhirService,
        store: SubscriptionStore,
        cache_seconds: float,
        on_enqueued: Callable[[], None] = lambda: None,
        endpoints: EndpointPolicy | None = None,
        access: StoredPrincipals | None = None,
    ) -> None:
        self.svc = svc
        self.store = store
        self.cache_seconds = cache_seconds
        self.endpoints = endpoints or EndpointPolicy()
        self.access: StoredPrincipals = access or OpenAccess()
        self.on_enqueued = on_enqueued  # called after a unit of work with new outbox rows has committed
        # Active subscriptions by the type their criteria search; None until loaded or after a change.
        self._by_type: dict[str, list[ActiveSubscription]] | None = None
        self._loaded_at = 0.0
        self._epoch = 0  # bumped by every invalidation, so a load that raced one is not kept
        self._warned: set[int] = set()  # subscriptions already logged as unmatchable (once each)

    def invalidate(self) -> None:
        self._by_type = None
        self._epoch += 1

    async def active_for(self, conn: AsyncConnection, res_type: str) -> list[ActiveSubscription]:
        """This process's view of the active subscriptions on a type: reloaded after a Subscription was
        written here, and every cache_seconds for those written by other processes."""
        by_type = self._by_type
        if by_type is None or time.monotonic() - self._loaded_at >= self.cache_seconds:
            by_type = await self._load(conn)
        return by_type.get(res_type, [])

    async def _load(self, conn: AsyncConnection) -> dict[str, list[ActiveSubscription]]:
        epoch = self._epoch
        by_type: dict[str, list[ActiveSubscription]] = {}
        for row in await self.store.active(conn):
            try:
                criteria = parse_subscription_criteria(self.svc.registry, row.criteria, self.svc.base_url)
            except FhirError:
                # Valid when written, but e.g. a search parameter it uses is gone since: it matches nothing.
                if row.pk not in self._warned:
                    self._warned.add(row.pk)
                    log.warning("subscription %s: criteria no longer parse; not matched", row.res_id)
                continue
            by_type.setdefault(criteria.res_type, []).append(ActiveSubscription(row.pk, row.res_id, criteria))
        if epoch == self._epoch:
            self._by_type, self._loaded_at = by_type, time.monotonic()
        return by_type

    # -- hooks ---------------------------------------------------------------------------------------
    async def before_write(self, event: WriteEvent) -> None:
        """Refuse what cannot be delivered (422); a requested subscription becomes active (R4: the server
        activates it once it accepts it). The change is made to the resource about to be stored."""
        if event.res_type != "Subscription" or event.resource is None:
            return
        spec = check_subscription(
            self.svc.registry, event.resource, self._endpoints(event), self.svc.base_url
        )
        if spec.status == "requested":
            event.resource["status"] = "active"

    async def after_write(self, event: WriteEvent) -> None:
        if event.res_type == "Subscription":
            await self.keep(event)
        if event.resource is None or event.pk is None:
            return  # R4: deletes notify nobody (criteria apply to the new content, and there is none)
        active = await self.active_for(event.conn, event.res_type)
        if not active:
            return
        matched = [sub.pk for sub in active if await self._matches(event, sub.criteria)]
        if matched:
            added = await self.store.enqueue(
                event.conn, matched, event.res_type, event.res_id, event.version, now_ms()
            )
            if added:
                Repository.after_commit(self.on_enqueued)

    async def keep(self, event: WriteEvent) -> None:
        """Mirror a Subscription's delivery fields into the subscription table (also on $reindex)."""
        if event.res_type != "Subscription" or event.pk is None:
            return
        row = None if event.resource is None else self._row(event)
        if row is None:
            await self.store.remove(event.conn, event.pk)
        else:
            await self.store.save(event.conn, row, now_ms())
        # Now for this unit of work's own later writes, and again once other requests can see the change.
        self.invalidate()
        Repository.after_commit(self.invalidate)

    def _row(self, event: WriteEvent) -> SubscriptionRow | None:
        assert event.resource is not None
        assert event.pk is not None
        try:
            spec = check_subscription(
                self.svc.registry, event.resource, self._endpoints(event), self.svc.base_url
            )
        except FhirError:
            if event.interaction != "reindex":
                raise
            # Accepted once, undeliverable now (e.g. a search parameter it uses is gone): stop delivering.
            log.warning("subscription %s: no longer deliverable; dropped on reindex", event.res_id)
            return None
        criteria_text = str(event.resource["criteria"])
        return SubscriptionRow(
            event.pk,
            event.res_id,
            spec.status,
            spec.criteria.res_type,
            criteria_text,
            spec.endpoint,
            spec.payload,
            spec.headers,
            # The writer's principal is who it delivers for; the server's own writes (status error) and
            # reindexing keep the one stored.
            None if event.interaction == "reindex" else self.access.registrant(event.ctx),
        )

    def _endpoints(self, event: WriteEvent) -> EndpointPolicy | None:
        """The endpoint rules a write must meet; none for the worker marking a subscription as failed."""
        return None if event.ctx.principal is DELIVERY_PRINCIPAL else self.endpoints

    async def _matches(self, event: WriteEvent, criteria: Criteria) -> bool:
        clauses = await resolve_value_sets(self.svc.repo, event.conn, criteria.clauses)
        found = await self.svc.repo.find(
            event.conn, event.res_type, (*clauses, IdIn((event.res_id,))), 1, CRITERIA_MATCH
        )
        return bool(found)
