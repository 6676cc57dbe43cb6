"""HTTP details of the FHIR REST API: media types, _format, Prefer, ETag and date headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.fhir.outcome import Category, FhirError, informational

FHIR_JSON = "application/fhir+json"
PLAIN_JSON = "application/json"
JSON_PATCH = "application/json-patch+json"

_FORMAT_ALIASES = {
    "json": FHIR_JSON,
    FHIR_JSON: FHIR_JSON,
    PLAIN_JSON: PLAIN_JSON,
    "text/json": PLAIN_JSON,
}
_XML_LIKE = ("xml", "ttl", "turtle", "html")
_ACCEPTABLE = (FHIR_JSON, PLAIN_JSON, "application/*", "*/*", "application/json+fhir")


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def response_media_type(request: Request) -> str:
    """Pick the response media type from _format (wins) or Accept; XML and other formats get 406."""
    fmt = request.query_params.get("_format") if request.scope["query_string"] else None
    if fmt is not None:
        media = _FORMAT_ALIASES.get(_media(fmt).replace(" ", "+"))
        if media is None:
            raise FhirError(
                Category.NOT_ACCEPTABLE, f"_format '{fmt[:40]}' is not supported; use json", "not-supported"
            )
        return media
    accept = request.headers.get("accept")
    if not accept:
        return FHIR_JSON
    offered = [_media(part) for part in accept.split(",")]
    if any(m in (FHIR_JSON, "application/json+fhir", "application/*", "*/*") for m in offered):
        return FHIR_JSON
    if PLAIN_JSON in offered:
        return PLAIN_JSON
    if any(any(x in m for x in _XML_LIKE) for m in offered):
        raise FhirError(
            Category.NOT_ACCEPTABLE, "Only JSON is supported (application/fhir+json)", "not-supported"
        )
    return FHIR_JSON


def require_json_body(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # tolerated: the body must still parse as FHIR JSON
    media = _media(content_type)
    if media not in (FHIR_JSON, PLAIN_JSON, "application/json+fhir"):
        raise FhirError(
            Category.UNSUPPORTED_MEDIA,
            f"Content-Type '{media[:60]}' is not supported; send application/fhir+json",
            "not-supported",
        )


def _preferences(request: Request) -> list[tuple[str, str]]:
    """The Prefer header's preferences (RFC 7240) as (lower-case name, value) pairs."""
    prefer = request.headers.get("prefer")
    if not prefer:
        return []
    found = []
    for part in prefer.split(","):
        for token in part.split(";"):
            key, _, value = token.strip().partition("=")
            found.append((key.strip().lower(), value.strip().strip('"')))
    return found


def prefer_return(request: Request) -> str:
    """representation (default), minimal or OperationOutcome, from the Prefer header."""
    for key, value in _preferences(request):
        if key == "return" and value in ("minimal", "representation", "OperationOutcome"):
            return value
    return "representation"


def prefer_async(request: Request) -> bool:
    """Prefer: respond-async (the FHIR asynchronous request pattern)."""
    return any(key == "respond-async" for key, _ in _preferences(request))


def prefer_strict(request: Request) -> bool:
    """Prefer: handling=strict: unknown or unsupported parameters are errors, not ignored."""
    return ("handling", "strict") in _preferences(request)


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_etag_version(header: str | None, name: str) -> int | None:
    """W/"3" or "3" -> 3. A malformed value is a client error, not something to ignore."""
    if header is None:
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not (value.isascii() and value.isdigit()):
        raise FhirError(
            Category.INVALID, f"{name} must look like W/\"<versionId>\", got '{header[:40]}'", "value"
        )
    return int(value)


# Versions are stored as 32-bit integers (resource.version): a larger number names no version, and the
# drivers refuse to send it (OverflowError on SQLite, "out of int32 range" on PostgreSQL).
MAX_VERSION = 2**31 - 1


def version_number(text: str) -> int | None:
    """A versionId from a URL as the stored number, or None when no stored version can have it."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_VERSION)):
        return None
    number = int(text)
    return number if number <= MAX_VERSION else None


def http_date(at: datetime) -> str:
    return _http_date_of_second(int(at.timestamp()))


@lru_cache(maxsize=4096)
def _http_date_of_second(epoch_seconds: int) -> str:
    # HTTP dates have second precision; hot resources share the few recent seconds, so cache them.
    return format_datetime(datetime.fromtimestamp(epoch_seconds, UTC), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def fhir_response(
    request: Request,
    body: bytes | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str | None = None,
) -> Response:
    media = media_type or response_media_type(request)
    if body is not None and request.scope["query_string"] and request.query_params.get("_pretty") == "true":
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    return Response(body, status_code=status, headers=headers, media_type=f"{media}; charset=utf-8")


def write_response(
    request: Request,
    status: int,
    content: bytes | None,
    headers: dict[str, str],
    message: str,
) -> Response:
    """Apply Prefer: return=minimal | representation | OperationOutcome to a write's result."""
    media = response_media_type(request)
    choice = prefer_return(request)
    if choice == "minimal" or (choice == "representation" and content is None):
        return Response(None, status_code=status, headers=headers, media_type=None)
    body: Any = content if choice == "representation" else orjson.dumps(informational(message))
    return fhir_response(request, body, status, headers, media)
