"""Who is asking: the verified caller of one request, built from token claims and request headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["personnel", "citizen", "system"]
ScopeContext = Literal["patient", "user", "system"]
# SMART v2 permissions: create, read, update, delete, search.
Permission = Literal["c", "r", "u", "d", "s"]


@dataclass(frozen=True, slots=True)
class Scope:
    context: ScopeContext
    res_type: str  # a resource type name or "*"
    permissions: frozenset[str]  # subset of {"c", "r", "u", "d", "s"}


@dataclass(frozen=True)
class ScopeSet:
    scopes: tuple[Scope, ...] = ()
    raw: tuple[str, ...] = ()  # the scope strings as granted (for the audit record)

    def allows(self, res_type: str, permission: Permission) -> bool:
        return any(permission in s.permissions and s.res_type in ("*", res_type) for s in self.scopes)

    def types_with(self, permission: Permission) -> frozenset[str] | None:
        """Resource types the scopes grant `permission` on; None means every type ("*")."""
        names = set()
        for s in self.scopes:
            if permission in s.permissions:
                if s.res_type == "*":
                    return None
                names.add(s.res_type)
        return frozenset(names)

    @property
    def contexts(self) -> frozenset[str]:
        return frozenset(s.context for s in self.scopes)


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject: str  # token "sub"
    client_id: str
    issuer: str
    scopes: ScopeSet
    expires_at: int = 0  # token "exp" (seconds since the epoch)
    token_id: str | None = None  # "jti"
    name: str | None = None
    # Personnel (HelseID-style claims)
    hpr: str | None = None  # HPR-nummer
    category: str | None = None  # health personnel category, Volven 9060 (LE, SP, JO, ...)
    orgnr: str | None = None  # the legal entity (parent organisation number)
    child_orgnr: str | None = None  # the sub-unit the person works in
    # Citizens: their fødselsnummer / D-nummer. Personnel tokens may carry theirs too (HelseID pid).
    pid: str | None = None
    launch_patient: str | None = None  # SMART launch context: a Patient id the token is limited to
    # Stated per request (token claim or nhn-* header) and recorded in the audit.
    access_basis: str | None = None  # care-relation (default), emergency, patient-consent, ...
    source_system: str | None = None
    emergency_reason: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def orgnrs(self) -> tuple[str, ...]:
        return tuple(o for o in (self.orgnr, self.child_orgnr) if o)
