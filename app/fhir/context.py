"""Per-request facts the interactions need, independent of HTTP (adapters build one too).

Every call into the engine names who is acting. A verified caller is whatever the security layer put there
(the engine only passes it on); work the server does on its own account names a `SystemPrincipal` with a
reason, so it is allowed and audited as such. Nothing is trusted because a principal is missing: the engine
refuses a context without one (`require_principal`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SystemPrincipal:
    """The server acting on its own account: demo load, adapters for a message's sender, delivery jobs."""

    name: str  # which part of the server, e.g. "demo-loader", "subscription-delivery"
    reason: str  # why it acts, recorded in the audit


# Requests when authentication is off (AUTH_MODE=off, the local demo): the security layer is not installed,
# so nothing is checked; with authentication on this principal is refused.
UNAUTHENTICATED = SystemPrincipal("unauthenticated", "authentication is off (AUTH_MODE=off)")


@dataclass
class RequestContext:
    # Public base URL without trailing slash, e.g. http://127.0.0.1:8080. A callable defers deriving it from
    # the HTTP request until something (a Location header, a Bundle link) needs it.
    base: str | Callable[[], str]
    # Who is acting: the verified caller (the security layer's Principal) or a SystemPrincipal.
    principal: object
    request_id: str = ""
    # The national service the request's reads and writes are part of, as (code, display), e.g. the core
    # journal's $summary: the audit records every access under it, so a patient's access log says so.
    service: tuple[str, str] | None = None
    # Per-request state of the hooks, keyed by the hook's own state class (see `state`).
    scratch: dict[Any, Any] = field(default_factory=dict)

    @cached_property
    def base_url(self) -> str:
        return self.base if isinstance(self.base, str) else self.base()

    def state(self, kind: type[T]) -> T:
        """The request's instance of a hook's state class, created on first use (typed, no string keys)."""
        found = self.scratch.get(kind)
        if found is None:
            found = self.scratch[kind] = kind()
        return found


class MissingPrincipal(RuntimeError):
    """A programming error: an engine call without a principal (never answered as a client error)."""


def require_principal(ctx: RequestContext) -> object:
    principal = getattr(ctx, "principal", None)
    if principal is None:
        raise MissingPrincipal(
            "engine calls need a principal: the caller's, or a SystemPrincipal with a reason"
        )
    return principal


def caller_key(principal: object) -> str:
    """Who acts, as one string: the same client for the same subject from the same issuer (a verified
    caller), or the named part of the server. Read-your-writes keys its bookkeeping by it."""
    if isinstance(principal, SystemPrincipal):
        return f"server:{principal.name}"
    parts = (getattr(principal, name, None) for name in ("issuer", "subject", "client_id"))
    return "caller:" + "|".join(str(part) for part in parts)
