"""Authentication: a pure ASGI middleware that turns `Authorization: Bearer <jwt>` into a Principal.

The Principal lands in scope["state"]["principal"] (request.state.principal in routes). Per-request
nhn-* headers state the access basis and source system; they override the token's claims.
The token itself is never logged or echoed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.fhir.outcome import Category, FhirError, outcome_bytes
from app.security.audit_writer import AUDIT_DEFERRED, AUDIT_WAITS
from app.security.principal import Principal
from app.security.smart import SMART_PATH, install_smart
from app.security.tokens import ACCESS_BASES, TokenVerifier, unauthorized

log = logging.getLogger("helsebro.auth")

PUBLIC_PATHS = frozenset({"/metadata", SMART_PATH, "/openapi.json", "/favicon.ico"})
REALM = 'Bearer realm="helsebro"'
MAX_SOURCE_SYSTEM = 200
MAX_EMERGENCY_REASON = 500
_MEDIA = b"application/fhir+json; charset=utf-8"
_NHN_HEADERS = frozenset({b"nhn-access-basis", b"nhn-source-system", b"nhn-emergency-reason"})


class MissingCredentials(Exception):
    """No (or no usable) Authorization header: RFC 6750 error="invalid_request"."""


def install_authentication(app: FastAPI, settings: Settings, public_paths: Collection[str] = ()) -> None:
    """Call before the outer middleware is added, so access logs and request ids cover 401s too.
    `public_paths` are served without a token besides PUBLIC_PATHS (the API documentation's and the citizen
    portal's pages and files: exact paths, never a prefix)."""
    install_smart(app, settings)
    if settings.auth_mode == "off":
        log.warning("AUTH_MODE=off: no authentication, access policy or audit (local demo only)")
        app.state.auth_enabled = False
        app.state.token_verifier = None
        return
    verifier = TokenVerifier(settings)
    app.state.auth_enabled = True
    app.state.token_verifier = verifier

    def known_types() -> Collection[str] | None:
        fhir = getattr(app.state, "fhir", None)
        return fhir.registry.types if fhir is not None else None

    public = PUBLIC_PATHS | frozenset(public_paths)
    app.add_middleware(BearerAuthentication, verifier=verifier, known_types=known_types, public_paths=public)


class BearerAuthentication:
    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        known_types: Callable[[], Collection[str] | None],
        public_paths: frozenset[str] = PUBLIC_PATHS,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.known_types = known_types
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _path(scope) in self.public_paths:
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
        except MissingCredentials as exc:
            await _reply(send, unauthorized(str(exc)), 'error="invalid_request"')
            return
        except FhirError as exc:
            if exc.category is Category.UNAUTHORIZED:
                log.info("bearer token refused: %s", exc.message)
                await _reply(send, exc, 'error="invalid_token"')
            else:
                await _reply(send, exc, None)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        hook_state: dict[str, Any] = state.setdefault("hook_state", {})
        hook_state[AUDIT_DEFERRED] = []  # the request's read events, queued when its response starts
        try:
            await self.app(scope, receive, _after_audit(send, hook_state))
        finally:
            _write_unawaited(hook_state.pop(AUDIT_WAITS, []))

    async def _authenticate(self, scope: Scope) -> Principal:
        authorization: list[bytes] = []
        nhn: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization.append(value)
            elif key in _NHN_HEADERS:
                nhn[key] = value
        # Who is asking comes first: an anonymous caller learns nothing about header rules (401 before 400).
        principal = await self.verifier.principal(_bearer_token(authorization), self.known_types())
        return _with_request_headers(principal, {k: _header_text(k, v) for k, v in nhn.items()})


def _bearer_token(values: list[bytes]) -> str:
    if not values:
        raise MissingCredentials("This server requires a bearer token (Authorization: Bearer <token>)")
    if len(values) > 1:
        raise MissingCredentials("The request has more than one Authorization header")
    scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingCredentials("The Authorization header must be of the form 'Bearer <token>'")
    return token


def _header_text(name: bytes, value: bytes) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    # Header values are ASCII on the wire: Norwegian text (an emergency reason) comes percent-encoded.
    text = unquote(text)
    # Control characters would let a client forge lines in the audit trail and logs.
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text):
        raise FhirError(Category.INVALID, f"The {name.decode()} header contains control characters")
    return text.strip()


def _with_request_headers(principal: Principal, nhn: dict[bytes, str]) -> Principal:
    access_basis = nhn.get(b"nhn-access-basis") or None
    source_system = nhn.get(b"nhn-source-system") or None
    reason = nhn.get(b"nhn-emergency-reason") or None
    if access_basis is not None and access_basis not in ACCESS_BASES:
        allowed = ", ".join(sorted(ACCESS_BASES))
        raise FhirError(Category.INVALID, f"nhn-access-basis must be one of: {allowed}")
    if source_system is not None and len(source_system) > MAX_SOURCE_SYSTEM:
        raise FhirError(Category.INVALID, f"nhn-source-system is longer than {MAX_SOURCE_SYSTEM} characters")
    if reason is not None:
        if len(reason) > MAX_EMERGENCY_REASON:
            raise FhirError(
                Category.INVALID, f"nhn-emergency-reason is longer than {MAX_EMERGENCY_REASON} characters"
            )
        # A reason is a deliberate break-the-glass; a different basis in the same request is ambiguous.
        if access_basis not in (None, "emergency"):
            raise FhirError(Category.INVALID, "nhn-emergency-reason requires nhn-access-basis: emergency")
        access_basis = "emergency"
    if access_basis is None and source_system is None and reason is None:
        return principal
    return dataclasses.replace(
        principal,
        access_basis=access_basis or principal.access_basis,
        source_system=source_system or principal.source_system,
        emergency_reason=reason,
    )


def _path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _reply(send: Send, error: FhirError, bearer_error: str | None) -> None:
    body = outcome_bytes(error.outcome())
    headers = [(b"content-type", _MEDIA), (b"content-length", str(len(body)).encode())]
    if bearer_error is not None:
        headers.append((b"www-authenticate", f"{REALM}, {bearer_error}".encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_UNAWAITED: set[asyncio.Future[Any]] = set()


def _write_unawaited(waits: list[Any]) -> None:
    """Audit writes of a request that never answered (the client went away, the handler was cancelled):
    still written, in the background; what was read is audited whether or not it was delivered."""
    for wait in waits:
        future = asyncio.ensure_future(wait)
        _UNAWAITED.add(future)
        future.add_done_callback(_settled)


def _settled(future: asyncio.Future[Any]) -> None:
    _UNAWAITED.discard(future)
    if not future.cancelled() and future.exception() is not None:
        log.error("audit write of an unanswered request failed", exc_info=future.exception())


def _after_audit(send: Send, hook_state: dict[str, Any]) -> Send:
    """Hold the response until the request's audit rows are committed.

    The access hooks queue audit events without waiting (a request must not hold its database connection
    while the group commit runs: with every connection held that way the commit could never get one).
    No response leaves before its audit is durable; if the audit cannot be written, the client gets 503
    instead of the data.
    """
    failed = False

    async def send_after_audit(message: Message) -> None:
        nonlocal failed
        if message["type"] == "http.response.start":
            waits = hook_state.pop(AUDIT_WAITS, [])
            if waits:
                try:
                    await (waits[0] if len(waits) == 1 else asyncio.gather(*waits))
                except Exception:
                    log.exception("audit write failed; the response is withheld")
                    failed = True
                    await _reply(
                        send, FhirError(Category.BUSY, "The access could not be audited; try again"), None
                    )
                    return
        elif failed:
            return  # the original body is dropped: its response was replaced
        await send(message)

    return send_after_audit
