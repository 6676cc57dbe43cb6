"""Work the server does later in a caller's name: the seam through which the security layer (which the
engine never imports) records the principal and gives it back.

Subscriptions deliver as the principal that registered them, and asynchronous jobs ($reindex, $export) run
as the principal that started them: the principal is stored with the subscription or the job (identity,
scopes as granted, organisation; never the token) and rebuilt when the work runs, so scopes, the access
policy and the audit apply exactly as to the caller's own requests.
"""

from __future__ import annotations

from typing import Protocol

from app.fhir.context import UNAUTHENTICATED, RequestContext


class StoredPrincipals(Protocol):
    def registrant(self, ctx: RequestContext) -> str | None:
        """What to store about the caller (JSON text), or None when there is nothing to store (the
        server itself acts: a subscription then keeps what is stored)."""

    def reader(self, registrant: str | None, base: str, request_id: str) -> RequestContext | None:
        """The context to act in as the stored principal; None when it cannot be identified, so nothing
        may be read in its name."""

    def same_caller(self, registrant: str | None, ctx: RequestContext) -> bool:
        """Whether the caller of `ctx` is the principal stored as `registrant` (a job's status and files
        are for the client that started it only)."""

    async def settle(self, ctx: RequestContext) -> None:
        """Return once the audit of the reads made in `ctx` is stored (raise if it cannot be)."""


class OpenAccess:
    """Authentication off (AUTH_MODE=off): no principals, no policy, no audit; everything is readable."""

    def registrant(self, ctx: RequestContext) -> str | None:
        return None

    def reader(self, registrant: str | None, base: str, request_id: str) -> RequestContext | None:
        return RequestContext(base, UNAUTHENTICATED, request_id=request_id)

    def same_caller(self, registrant: str | None, ctx: RequestContext) -> bool:
        return True

    async def settle(self, ctx: RequestContext) -> None:
        return None
