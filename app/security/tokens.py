"""Bearer token verification (JWT, asymmetric signatures only) and the Principal a token's claims describe.

The registered claims (iss, aud, exp, nbf, iat, sub, jti) are checked with joserfc's JWTClaimsRegistry.
Each verified token is cached until it expires, so its signature is checked once, not on every request;
expiry is still checked on every use. Error messages never quote the token or claim values.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from joserfc import jws
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import ECKey, Key, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from app.config import Settings
from app.fhir.outcome import Category, FhirError
from app.security.devtoken import (
    CLAIM_ACCESS_BASIS,
    CLAIM_CATEGORY,
    CLAIM_CHILD_ORGNR,
    CLAIM_HPR,
    CLAIM_ORGNR,
    CLAIM_PID,
    CLAIM_SOURCE_SYSTEM,
    DEV_ISSUER,
    dev_public_key,
)
from app.security.principal import Principal, PrincipalKind
from app.security.scopes import parse_scopes, restrict_contexts

__all__ = ["ACCESS_BASES", "DEV_ISSUER", "TokenVerifier", "principal_from_claims"]

log = logging.getLogger("helsebro.auth")

# Asymmetric only: no "none", and no HS* (a shared secret, and the classic RSA-public-key-as-HMAC trick).
ALLOWED_ALGORITHMS = frozenset({"RS256", "PS256", "ES256"})
LEEWAY_SECONDS = 30
CACHE_SIZE = 10_000
MAX_TOKEN_LENGTH = 16 * 1024
# An unknown kid triggers a JWKS refetch at most this often (a flood of forged kids must not hammer
# the issuer); keys are refetched anyway after JWKS_MAX_AGE so a withdrawn key stops working.
JWKS_REFETCH_SECONDS = 300.0
JWKS_RETRY_SECONDS = 30.0
JWKS_MAX_AGE = 3600.0
# Unknown header parameters are to be ignored (RFC 7515 4), and x5c chains need more than 512 bytes.
_JWS = jws.JWSRegistry(algorithms=sorted(ALLOWED_ALGORITHMS), strict_check_header=False)
_JWS.max_header_length = 8 * 1024
ACCESS_BASES = frozenset({"care-relation", "emergency", "patient-consent"})
_CATEGORY = re.compile(r"[A-Z]{2}")
CLAIM_SECURITY_LEVEL = "helseid://claims/identity/security_level"


def unauthorized(message: str) -> FhirError:
    return FhirError(Category.UNAUTHORIZED, message, "login")


# What a refused registered claim is reported as (the claim's name only, never its value).
_CLAIM_MESSAGES = {
    "iss": "The token issuer is not trusted",
    "aud": "The token is not meant for this server (aud)",
    "exp": "The token has no valid expiry (exp)",
    "nbf": "The bearer token is not valid yet (nbf)",
    "iat": "The token's issue time (iat) is invalid",
}


def _claim_error(error: ClaimError) -> FhirError:
    if isinstance(error, ExpiredTokenError):
        return unauthorized("The bearer token has expired")
    # A MissingClaimError names every missing essential claim, comma-separated: report the first in
    # the order of _CLAIM_MESSAGES (the issuer before the audience before the expiry).
    names = error.claim.split(",")
    claim = next((name for name in _CLAIM_MESSAGES if name in names), names[0])
    return unauthorized(_CLAIM_MESSAGES.get(claim, f"The token claim {claim} is invalid"))


def _expired(exp: float, now: float) -> bool:
    """The registry's own rule (exp <= now - leeway, now in whole seconds), for the tokens in the cache."""
    return exp <= math.floor(now) - LEEWAY_SECONDS


def _check_signature(token: str, key: Key, algorithm: str) -> bool:
    """The one expensive step; a module function so tests can count how often it runs."""
    try:
        jws.deserialize_compact(token, key, algorithms=[algorithm], registry=_JWS)
    except JoseError:
        return False
    return True


def parse_jwks(data: Any) -> dict[str, Key]:
    """Public signing keys by kid. Keys without a kid, of other types or not for signing are skipped."""
    keys: dict[str, Key] = {}
    entries = data.get("keys") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            if entry.get("kty") == "RSA":
                keys[entry["kid"]] = RSAKey.import_key(public)
            elif entry.get("kty") == "EC" and entry.get("crv") == "P-256":
                keys[entry["kid"]] = ECKey.import_key(public)
        except (JoseError, ValueError, TypeError):
            log.warning("skipped an unreadable key in a JWKS")
    return keys


@dataclass(slots=True)
class _Verified:
    """A cache entry: a token whose signature and claims checked out."""

    exp: float
    claims: dict[str, Any]
    principal: Principal | None = None  # built on first use; the known types do not change at runtime


class TokenVerifier:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.audience = settings.auth_audience
        self.issuers = frozenset(i.strip() for i in settings.auth_issuers.split(",") if i.strip())
        self.dev_issuer = settings.auth_dev_issuer
        self.trusted_issuers = self.issuers | {DEV_ISSUER} if self.dev_issuer else self.issuers
        self._clock = clock
        self._transport = transport
        self._jwks_file = settings.auth_jwks_file
        self._jwks_url = settings.auth_jwks_url
        self._dev_keys: dict[str, Key] = {}
        if self.dev_issuer:
            key = dev_public_key(settings.auth_dev_key_file)
            self._dev_keys[key.kid or ""] = key
        self._keys: dict[str, Key] = {}  # the configured issuers' keys (file and URL)
        self._next_refresh = 0.0
        self._keys_loaded_at = 0.0
        self._refresh_lock = asyncio.Lock()
        self._cache: dict[str, _Verified] = {}
        if self._jwks_file:
            self._keys.update(parse_jwks(orjson.loads(Path(self._jwks_file).read_bytes())))
        if not self.trusted_issuers:
            log.warning("authentication is on but no token issuer is trusted: every request gets 401")

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims (shared with the cache: do not modify), or FhirError(UNAUTHORIZED)."""
        return (await self._verified(token)).claims

    async def principal(self, token: str, known_types: Collection[str] | None) -> Principal:
        """verify() + principal_from_claims(), the Principal memoised with the claims (a read-path saving)."""
        verified = await self._verified(token)
        if verified.principal is None:
            verified.principal = principal_from_claims(verified.claims, known_types)
        return verified.principal

    async def _verified(self, token: str) -> _Verified:
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None:
            if _expired(cached.exp, now):
                self._cache.pop(token, None)
                raise unauthorized("The bearer token has expired")
            return cached
        claims = await self._verify_uncached(token, now)
        verified = _Verified(float(claims["exp"]), claims)
        self._remember(token, verified)
        return verified

    async def _verify_uncached(self, token: str, now: float) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise unauthorized("The bearer token is malformed")
        try:
            compact = jws.extract_compact(token.encode("ascii"), registry=_JWS)
            header = compact.headers()
            claims = orjson.loads(compact.payload)
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise unauthorized("The bearer token is malformed") from None
        if not isinstance(claims, dict):
            raise unauthorized("The bearer token is malformed")
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise unauthorized("The token's signature algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise unauthorized("The token header names no signing key (kid)")
        # Cheap claim checks first; the signature is what makes them trustworthy, so it is checked too.
        self._check_claims(claims, now)
        key = await self._key_for(claims["iss"], kid, now)
        if key is None:
            raise unauthorized("The token's signing key is not known")
        if not _check_signature(token, key, algorithm):
            raise unauthorized("The token signature is invalid")
        return claims

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        if not self.trusted_issuers:
            # Kept by hand: the registry reads an empty "values" list as "any value".
            raise unauthorized("The token issuer is not trusted")
        # exp is essential: a token without an expiry would stay valid (and cached) forever.
        registry = JWTClaimsRegistry(
            now=math.floor(now),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "values": sorted(self.trusted_issuers)},
            aud={"essential": True, "value": self.audience},  # a string, or a list that contains it
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ClaimError as error:
            raise _claim_error(error) from None

    async def _key_for(self, issuer: str, kid: str, now: float) -> Key | None:
        # Keys are bound to issuers: the dev key signs only for the dev issuer, and vice versa.
        if issuer == DEV_ISSUER and self.dev_issuer:
            return self._dev_keys.get(kid)
        if issuer not in self.issuers:
            return None
        key = self._keys.get(kid)
        stale = self._jwks_url and now - self._keys_loaded_at > JWKS_MAX_AGE
        if (key is None or stale) and now >= self._next_refresh:
            await self._refresh(now)
            key = self._keys.get(kid)
        return key

    async def _refresh(self, now: float) -> None:
        async with self._refresh_lock:
            if now < self._next_refresh:
                return  # another request refreshed while this one waited
            self._next_refresh = now + JWKS_RETRY_SECONDS
            keys: dict[str, Key] = {}
            try:
                if self._jwks_file:
                    data = await asyncio.to_thread(Path(self._jwks_file).read_bytes)
                    keys.update(parse_jwks(orjson.loads(data)))
                if self._jwks_url:
                    keys.update(await self._fetch_jwks())
            except (OSError, ValueError, httpx.HTTPError) as exc:
                log.warning("could not refresh the token signing keys: %s", type(exc).__name__)
                return
            self._keys = keys
            self._keys_loaded_at = now
            self._next_refresh = now + JWKS_REFETCH_SECONDS

    async def _fetch_jwks(self) -> dict[str, Key]:
        async with httpx.AsyncClient(transport=self._transport, timeout=5.0) as client:
            response = await client.get(self._jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return parse_jwks(orjson.loads(response.content))

    def _remember(self, token: str, verified: _Verified) -> None:
        if len(self._cache) >= CACHE_SIZE:
            now = self._clock()
            for cached_token in [t for t, v in self._cache.items() if _expired(v.exp, now)]:
                del self._cache[cached_token]
            if len(self._cache) >= CACHE_SIZE:
                # Still full of live tokens: drop the oldest tenth (dicts keep insertion order).
                for cached_token in list(self._cache)[: CACHE_SIZE // 10]:
                    del self._cache[cached_token]
        self._cache[token] = verified


def _text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric identifiers (orgnr, HPR) from issuers that send JSON numbers
    if not isinstance(value, str):
        raise unauthorized(f"The token claim {name} has an invalid type")
    return value.strip() or None


def principal_from_claims(claims: dict[str, Any], known_types: Collection[str] | None) -> Principal:
    """Who the token says the caller is. Refuses (401) tokens whose claims do not add up."""
    hpr = _text(claims, CLAIM_HPR)
    pid = _text(claims, CLAIM_PID)
    orgnr = _text(claims, CLAIM_ORGNR)
    category = _text(claims, CLAIM_CATEGORY)
    access_basis = _text(claims, CLAIM_ACCESS_BASIS)
    scope_claim = claims.get("scope", "")
    if not isinstance(scope_claim, str | list):
        raise unauthorized("The token claim scope has an invalid type")
    granted = parse_scopes(scope_claim, known_types)

    kind: PrincipalKind
    if hpr:
        kind = "personnel"
        if not orgnr:
            raise unauthorized("personnel tokens must name their organisation")
        scopes = restrict_contexts(granted, ("patient", "user"))
        if "patient" in scopes.contexts and not _text(claims, "patient"):
            # Without a launch patient a patient/ scope has nothing to limit it to: it would act as user/.
            raise unauthorized(
                "A personnel token with patient/ scopes must name its launch patient (patient)"
            )
    elif pid:
        kind = "citizen"
        scopes = restrict_contexts(granted, ("patient", "user"))
    else:
        kind = "system"
        scopes = restrict_contexts(granted, ("system",))
        if granted.scopes and not scopes.scopes:
            raise unauthorized("token does not identify a person")
    if category is not None and _CATEGORY.fullmatch(category) is None:
        raise unauthorized("The token's health personnel category is not a valid code")
    if access_basis is not None and access_basis not in ACCESS_BASES:
        raise unauthorized("The token's access basis is not recognised")

    client_id = _text(claims, "client_id") or _text(claims, "azp") or ""
    subject = _text(claims, "sub") or client_id
    if not subject:
        raise unauthorized("The token names neither a subject nor a client")
    security_level = _text(claims, CLAIM_SECURITY_LEVEL)
    return Principal(
        kind=kind,
        subject=subject,
        client_id=client_id,
        issuer=str(claims.get("iss", "")),
        scopes=scopes,
        expires_at=int(claims.get("exp", 0)),
        token_id=_text(claims, "jti"),
        name=_text(claims, "name"),
        hpr=hpr,
        category=category,
        orgnr=orgnr,
        child_orgnr=_text(claims, CLAIM_CHILD_ORGNR),
        pid=pid,
        launch_patient=_text(claims, "patient"),
        access_basis=access_basis,
        source_system=_text(claims, CLAIM_SOURCE_SYSTEM),
        extra={"security_level": security_level} if security_level else {},
    )
