"""FHIR R4 Subscriptions (rest-hook) with a transactional outbox.

install_subscriptions() adds the write hooks (check Subscriptions, fill the outbox in each write's unit
of work) and builds the delivery worker, which the application starts and stops with its lifespan.
"""

from __future__ import annotations

from app.fhir.hooks import Stage
from app.fhir.service import FhirService
from app.fhir.stored_principals import OpenAccess, StoredPrincipals
from app.fhir.subscriptions.config import SubscriptionConfig
from app.fhir.subscriptions.endpoints import EndpointPolicy
from app.fhir.subscriptions.matcher import SubscriptionMatcher
from app.fhir.subscriptions.worker import DeliveryWorker
from app.store.subscriptions import SubscriptionStore

__all__ = ["StoredPrincipals", "SubscriptionConfig", "Subscriptions", "install_subscriptions"]


class Subscriptions:
    def __init__(self, matcher: SubscriptionMatcher, worker: DeliveryWorker | None) -> None:
        self.matcher = matcher
        self.worker = worker  # None when this process does not deliver

    async def start(self) -> None:
        if self.worker is not None:
            self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()


def install_subscriptions(
    svc: FhirService, config: SubscriptionConfig, access: StoredPrincipals | None = None
) -> Subscriptions:
    """`access`: who delivery reads as (the security layer's, with authentication on); None: no policy."""
    access = access or OpenAccess()
    endpoints = EndpointPolicy.from_entries(config.endpoint_allowlist)
    store = SubscriptionStore(skip_locked=not svc.repo.db.sqlite)
    worker = DeliveryWorker(svc, store, config, access, endpoints) if config.worker else None
    matcher = SubscriptionMatcher(
        svc,
        store,
        config.cache_seconds,
        worker.wake if worker is not None else lambda: None,
        endpoints,
        access,
    )
    svc.hooks.before_write.add(Stage.NORMALISE, matcher.before_write)
    svc.hooks.after_write.add(Stage.NOTIFY, matcher.after_write)
    svc.hooks.on_reindex.add(Stage.NOTIFY, matcher.keep)
    return Subscriptions(matcher, worker)
