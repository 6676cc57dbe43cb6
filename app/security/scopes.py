"""SMART on FHIR scopes (v2 `patient/Observation.rs`, v1 `user/*.read`) parsed into a ScopeSet.

Anything we cannot enforce exactly is refused rather than widened: v2 query suffixes
(`patient/Observation.rs?category=laboratory`), letters out of c-r-u-d-s order, unknown resource types.
Refused and non-FHIR scopes (openid, launch, helseid://...) are still kept in ScopeSet.raw for the audit.

One scope of our own is not a resource scope: IDENTITY_ADMIN_SCOPE lets a client change the identities
the access policy trusts (see identity_admin). Its `helsebro/` prefix is no SMART context, so the resource
scope parser never reads it as one, and `system/*.cruds` never implies it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

from app.security.principal import Scope, ScopeContext, ScopeSet

# Needed (besides a write scope) to change what Organization, Practitioner and PractitionerRole tell the
# policy: identifiers, hierarchy and role links, active. Honoured on system and personnel tokens only.
IDENTITY_ADMIN_SCOPE = "helsebro/identity.admin"

_SCOPE = re.compile(r"(patient|user|system)/(\*|[A-Z][A-Za-z]*)\.([^?]+)")
# v2: each letter at most once and in this order; the empty match is refused separately.
_V2_PERMISSIONS = re.compile(r"c?r?u?d?s?")
_CONTEXTS: dict[str, ScopeContext] = {"patient": "patient", "user": "user", "system": "system"}
_V1_PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset("rs"),
    "write": frozenset("cud"),
    "*": frozenset("cruds"),
}


@lru_cache(maxsize=4096)
def _parse_one(text: str) -> Scope | None:
    """One scope string -> Scope, or None when it grants nothing. Cached: tokens repeat the same few."""
    match = _SCOPE.fullmatch(text)
    if match is None:
        return None  # not a resource scope, or one with a query suffix
    context, res_type, letters = match.groups()
    permissions = _V1_PERMISSIONS.get(letters)
    if permissions is None:
        if not letters or _V2_PERMISSIONS.fullmatch(letters) is None:
            return None
        permissions = frozenset(letters)
    return Scope(_CONTEXTS[context], res_type, permissions)


def split_scope_text(text: str | list[str]) -> list[str]:
    """A space-separated `scope` claim, or a list of scopes (some issuers send a JSON array)."""
    items = [text] if isinstance(text, str) else text
    return [part for item in items if isinstance(item, str) for part in item.split()]


def parse_scopes(text: str | list[str], known_types: Collection[str] | None = None) -> ScopeSet:
    """Parse granted scopes; `known_types` (resource type names) refuses scopes on unknown types."""
    raw: dict[str, None] = {}  # ordered and de-duplicated
    granted: dict[tuple[ScopeContext, str], set[str]] = {}
    for item in split_scope_text(text):
        raw[item] = None
        scope = _parse_one(item)
        if scope is None:
            continue
        if scope.res_type != "*" and known_types is not None and scope.res_type not in known_types:
            continue
        # `user/Patient.r user/Patient.s` is the same grant as `user/Patient.rs`.
        granted.setdefault((scope.context, scope.res_type), set()).update(scope.permissions)
    scopes = tuple(
        Scope(context, res_type, frozenset(perms)) for (context, res_type), perms in granted.items()
    )
    return ScopeSet(scopes=scopes, raw=tuple(raw))


def restrict_contexts(scope_set: ScopeSet, contexts: Collection[str]) -> ScopeSet:
    """Only the scopes of the given contexts (e.g. drop system/ scopes from a person's token)."""
    kept = tuple(s for s in scope_set.scopes if s.context in contexts)
    return ScopeSet(scopes=kept, raw=scope_set.raw)


def identity_admin(scope_set: ScopeSet) -> bool:
    """The token was granted the identity administration scope."""
    return IDENTITY_ADMIN_SCOPE in scope_set.raw
