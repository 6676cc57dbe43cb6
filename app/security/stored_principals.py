"""Principals stored for later work (authentication on): subscriptions deliver for the principal that
registered them, asynchronous jobs run as the principal that started them.

The verified principal is stored with the subscription or job (its identity, scopes as granted and
organisation, never the token). When the work runs it is rebuilt and everything is read in its name, so
scopes, consent blocks and care relations apply, and the reads are audited, as for the client's own
requests. A request-bound emergency reason is never stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from app.fhir.context import RequestContext
from app.security.audit_writer import AUDIT_WAITS
from app.security.principal import Principal, PrincipalKind, Scope, ScopeContext, ScopeSet

_KINDS: dict[str, PrincipalKind] = {"personnel": "personnel", "citizen": "citizen", "system": "system"}
_CONTEXTS: dict[str, ScopeContext] = {"patient": "patient", "user": "user", "system": "system"}
# Principal fields kept as they are: three required, then optional text.
_FIELDS = (
    "subject",
    "client_id",
    "issuer",
    "name",
    "hpr",
    "category",
    "orgnr",
    "child_orgnr",
    "pid",
    "launch_patient",
    "access_basis",
    "source_system",
)


def dump_principal(principal: Principal) -> str:
    claims: dict[str, Any] = {k: getattr(principal, k) for k in _FIELDS if getattr(principal, k) is not None}
    claims["kind"] = principal.kind
    claims["scopes"] = [
        [s.context, s.res_type, "".join(p for p in "cruds" if p in s.permissions)]
        for s in principal.scopes.scopes
    ]
    claims["raw_scopes"] = list(principal.scopes.raw)
    if principal.extra:
        claims["extra"] = principal.extra
    return orjson.dumps(claims).decode()


def load_principal(text: str) -> Principal:
    """Raises ValueError, KeyError or TypeError for anything but what dump_principal wrote."""
    claims = orjson.loads(text)
    scopes = tuple(Scope(_CONTEXTS[c], str(t), frozenset(str(p))) for c, t, p in claims["scopes"])
    optional = {k: str(claims[k]) for k in _FIELDS[3:] if claims.get(k) is not None}
    return Principal(
        kind=_KINDS[claims["kind"]],
        subject=str(claims["subject"]),
        client_id=str(claims["client_id"]),
        issuer=str(claims["issuer"]),
        scopes=ScopeSet(scopes, tuple(str(r) for r in claims["raw_scopes"])),
        extra={str(k): str(v) for k, v in claims.get("extra", {}).items()},
        **optional,  # type: ignore[arg-type]
    )


class PrincipalAccess:
    """StoredPrincipals with authentication on."""

    def registrant(self, ctx: RequestContext) -> str | None:
        principal = ctx.principal
        return dump_principal(principal) if isinstance(principal, Principal) else None

    def reader(self, registrant: str | None, base: str, request_id: str) -> RequestContext | None:
        # No principal recorded (written before principals were, or by the server itself): nobody can
        # say what the subscriber may see, so it sees nothing.
        if registrant is None:
            return None
        try:
            principal = load_principal(registrant)
        except (ValueError, KeyError, TypeError):
            return None
        return RequestContext(base, principal, request_id=request_id)

    def same_caller(self, registrant: str | None, ctx: RequestContext) -> bool:
        principal = ctx.principal
        if registrant is None or not isinstance(principal, Principal):
            return False
        try:
            stored = load_principal(registrant)
        except (ValueError, KeyError, TypeError):
            return False
        # The same client acting for the same subject, as vouched for by the same issuer.
        return (stored.issuer, stored.subject, stored.client_id) == (
            principal.issuer,
            principal.subject,
            principal.client_id,
        )

    async def settle(self, ctx: RequestContext) -> None:
        waits = ctx.scratch.pop(AUDIT_WAITS, [])
        if waits:
            await asyncio.gather(*waits)
