"""Pure ASGI middleware (no BaseHTTPMiddleware overhead): body size limit and a patient-safe access log."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import traceback
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.fhir.outcome import Category, FhirError, outcome_bytes

log = logging.getLogger("helsebro.access")
error_log = logging.getLogger("helsebro.errors")

# Request ids: a per-process random prefix and a counter, cheaper than a uuid on every request.
_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(1)


# No FHIR type, id, version or operation name holds a control character. Route patterns end in `$`, which
# in Python also matches before a final newline, so without this check /Patient/kari%0A read Patient/kari.
_CONTROL_IN_PATH = re.compile("[\x00-\x1f\x7f]")
_CONTROL_PATH_ERROR = FhirError(
    Category.INVALID,
    "The request path holds a control character, which no FHIR type, id or operation has",
    "value",
)


class BodyTooLarge(Exception):
    pass


def body_too_large_error(limit: int) -> FhirError:
    return FhirError(
        Category.TOO_LARGE, f"The request body is larger than the limit of {limit} bytes", "too-costly"
    )


class BodyLimitAndAccessLog:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 0}
        request_id = ""
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                await self._reply_too_large(send)
                self._log(scope, 413, started, request_id)
                return
            if key == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
        if not request_id:
            request_id = f"{_ID_PREFIX}-{next(_ID_COUNTER)}"
        scope.setdefault("state", {})["request_id"] = request_id
        if _CONTROL_IN_PATH.search(scope["path"]):
            await self._reply(send, _CONTROL_PATH_ERROR, request_id)
            self._log(scope, 400, started, request_id)
            return

        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        # Only requests that carry a body need their receive channel counted.
        has_body = scope["method"] in ("POST", "PUT", "PATCH")
        try:
            await self.app(scope, limited_receive if has_body else receive, send_with_id)
        except Exception as exc:
            # Frames only, never the message: driver errors quote SQL parameters, i.e. patient data.
            # Not re-raised, so no server logs the message either.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            error_log.error(
                "unhandled %s on %s %s id=%s\n%s",
                type(exc).__name__,
                scope["method"],
                _loggable_path(scope),
                request_id,
                frames,
            )
            if status_holder["status"] == 0:
                status_holder["status"] = 500
                await self._reply(
                    send,
                    FhirError(
                        Category.FAULT,
                        f"Internal server error; the incident has been logged with id {request_id}",
                        "exception",
                    ),
                    request_id,
                )
        finally:
            self._log(scope, status_holder["status"], started, request_id)

    async def _reply_too_large(self, send: Send) -> None:
        await self._reply(send, body_too_large_error(self.max_body_bytes), "")

    @staticmethod
    async def _reply(send: Send, error: FhirError, request_id: str) -> None:
        body = outcome_bytes(error.outcome())
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/fhir+json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    *([(b"x-request-id", request_id.encode("latin-1"))] if request_id else []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: Scope, status: int, started: float, request_id: str) -> None:
        if log.isEnabledFor(logging.INFO):
            elapsed = (time.perf_counter() - started) * 1000
            log.info(
                "%s %s %s %.1fms id=%s", scope["method"], _loggable_path(scope), status, elapsed, request_id
            )


def _loggable_path(scope: Scope) -> str:
    """The matched route with only the resource type filled in, e.g. /Patient/{res_id}.

    Never the query string or ids: both can carry personal identifiers (a fødselsnummer as search value,
    or as a client-chosen id), and logs must hold no patient data.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    # app.fhir.routing's fallback takes every path no route serves: its template says nothing.
    if not isinstance(template, str) or getattr(route, "name", None) == "unrouted":
        return "(no route)"
    res_type = scope.get("path_params", {}).get("res_type")
    if isinstance(res_type, str) and res_type.isalpha():
        template = template.replace("{res_type}", res_type)
    return template
