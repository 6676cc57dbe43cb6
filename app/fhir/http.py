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


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _fhir_version(value: str) -> str | None:
    """The media type's fhirVersion parameter (R4 3.1.0.1.11, e.g. `; fhirVersion=4.0`), if any."""
    for parameter in value.split(";")[1:]:
        name, _, version = parameter.partition("=")
        if name.strip().lower() == "fhirversion":
            return version.strip().strip('"')
    return None


def _serves_version(value: str) -> bool:
    """Whether a media type asks for no FHIR version or for R4 (4.0, or a 4.0.x patch release)."""
    version = _fhir_version(value)
    return version is None or version == "4.0" or version.startswith("4.0.")


def _version_error(category: Category, value: str) -> FhirError:
    return FhirError(
        category,
        f"This server serves FHIR R4 (fhirVersion 4.0), not fhirVersion {(_fhir_version(value) or '')[:20]}",
        "not-supported",
    )


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
    parts = accept.split(",")
    served = [part for part in parts if _serves_version(part)]
    if not served:
        raise _version_error(Category.NOT_ACCEPTABLE, parts[0])
    offered = [_media(part) for part in served]
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
    if not _serves_version(content_type):
        raise _version_error(Category.UNSUPPORTED_MEDIA, content_type)


async def operation_body(request: Request) -> Any:
    """An operation's JSON body, parsed (it may be empty: None); malformed JSON is a 400."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FhirError(Category.INVALID, "The body is not valid JSON") from None


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


# If-Match values besides a version number (versions start at 1): `*`, any current version (RFC 9110
# 13.1.1), and a well-formed entity tag that names no version of ours (W/"abc"), which matches nothing.
ANY_VERSION = 0
NO_VERSION = -1


def _tag_version(tag: str) -> int | None:
    """W/"3", "3" or 3 -> 3; any other well-formed entity tag -> NO_VERSION; malformed -> None."""
    opaque = tag[2:] if tag.startswith("W/") else tag
    quoted = len(opaque) >= 2 and opaque[0] == opaque[-1] == '"'
    inner = opaque[1:-1] if quoted else opaque
    if inner.isascii() and inner.isdigit():
        return int(inner) if len(inner) <= len(str(MAX_VERSION)) else NO_VERSION
    if quoted and '"' not in inner and all("!" <= c <= "~" for c in inner):
        return NO_VERSION
    return None


def parse_etag_version(header: str | None, name: str) -> int | None:
    """If-Match (or a bundle entry's ifMatch): a version, ANY_VERSION for `*`, NO_VERSION for an entity
    tag that names no version (412, not 400, as RFC 9110 asks). Malformed is a client error."""
    if header is None:
        return None
    value = header.strip()
    if value == "*":
        return ANY_VERSION
    version = _tag_version(value)
    if version is None:
        raise FhirError(
            Category.INVALID, f"{name} must look like W/\"<versionId>\", got '{header[:40]}'", "value"
        )
    return version


def none_match(header: str, version: int) -> bool:
    """Whether If-None-Match names `version` (or is `*`): a list of the same forms If-Match takes."""
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or version in (_tag_version(tag) for tag in tags)


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
