"""Who a subscription delivers for: the seam through which the security layer (which the engine never
imports) records the registering principal and gives it back at delivery.

Delivery reads each notified version through the engine's vread in a context carrying the subscriber's
principal, so the scopes, the access policy and the audit apply exactly as to the subscriber's own read.
"""

from __future__ import annotations

from typing import Protocol

from app.fhir.context import UNAUTHENTICATED, RequestContext, SystemPrincipal

# The worker records a subscription's failure on it (status "error") on the server's own account. That
# write keeps the endpoint as it is, even one the endpoint rules refuse now (that is why it failed).
DELIVERY_PRINCIPAL = SystemPrincipal("subscription-delivery", "mark a subscription whose delivery failed")


class SubscriberAccess(Protocol):
    def registrant(self, ctx: RequestContext) -> str | None:
        """What to store about the writer of a Subscription (JSON text), or None to keep what is stored
        (a write by the server itself, e.g. setting the status to error, or a reindex)."""

    def reader(self, registrant: str | None, base: str, request_id: str) -> RequestContext | None:
        """The context to read a notified version in, as the subscriber; None when the subscriber cannot
        be identified, so nothing may be read for it."""

    async def settle(self, ctx: RequestContext) -> None:
        """Return once the audit of the reads made in `ctx` is stored (raise if it cannot be)."""


class OpenAccess:
    """Authentication off (AUTH_MODE=off): no principals, no policy, no audit; every version is readable."""

    def registrant(self, ctx: RequestContext) -> str | None:
        return None

    def reader(self, registrant: str | None, base: str, request_id: str) -> RequestContext | None:
        return RequestContext(base, UNAUTHENTICATED, request_id=request_id)

    async def settle(self, ctx: RequestContext) -> None:
        return None
