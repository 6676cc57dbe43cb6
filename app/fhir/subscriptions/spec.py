"""A Subscription resource checked for what this server can deliver: R4 rest-hook only.

The criteria are parsed by the search engine (the same strict parser as conditional interactions), so a
subscription can only ask for what a search could find.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry
from app.fhir.search.criteria import Criteria, parse_criteria
from app.fhir.subscriptions.endpoints import EndpointPolicy

SUPPORTED_PAYLOADS = ("application/fhir+json", "application/json")
# RFC 9110 token characters for a header name.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers the HTTP client owns; a subscription must not override them.
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection"})
# Control characters (HTAB aside) in a header line could end it early and inject another header or body.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class SubscriptionSpec:
    status: str
    criteria: Criteria
    endpoint: str
    payload: str | None  # None: an empty notification (ping)
    headers: tuple[str, ...]


def unprocessable(message: str, field: str) -> FhirError:
    return FhirError(Category.UNPROCESSABLE, message, "not-supported", (f"Subscription.{field}",))


def parse_subscription_criteria(registry: Registry, text: str, base_url: str) -> Criteria:
    """`Type?param=value&...` or `Type` alone (every resource of the type)."""
    res_type, _, query = text.strip().partition("?")
    rtype = registry.get(res_type)
    if rtype is None:
        raise unprocessable(f"Unknown or unsupported resource type '{res_type[:64]}' in criteria", "criteria")
    if not query:
        return Criteria(rtype.name, (), "")
    try:
        return parse_criteria(rtype, query, registry, base_url)
    except FhirError as exc:
        raise unprocessable(f"Invalid criteria: {exc.message}", "criteria") from None


def split_header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip(), value.strip()


def check_endpoint(endpoint: Any, endpoints: EndpointPolicy | None) -> str:
    """`endpoints` None: the endpoint is not judged (the server's own write of a failed subscription)."""
    if not isinstance(endpoint, str):
        raise unprocessable("A rest-hook subscription needs channel.endpoint", "channel.endpoint")
    refusal = endpoints.refusal(endpoint) if endpoints is not None else None
    if refusal is not None:
        raise unprocessable(refusal, "channel.endpoint")
    return endpoint


def check_headers(headers: Any) -> tuple[str, ...]:
    lines = tuple(headers or ())
    for line in lines:
        name, _value = split_header(line)
        if (
            not isinstance(line, str)
            or ":" not in line
            or _CONTROL.search(line)
            or not _HEADER_NAME.fullmatch(name)
            or name.lower() in _RESERVED_HEADERS
        ):
            raise unprocessable(
                "Each channel.header must be 'Name: value' with a header name this server may send",
                "channel.header",
            )
    return lines


def check_subscription(
    registry: Registry, resource: dict[str, Any], endpoints: EndpointPolicy | None, base_url: str
) -> SubscriptionSpec:
    """The deliverable form of a (structurally valid) Subscription, or a 422 saying what is unsupported."""
    channel = resource.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise unprocessable(
            f"Channel type '{str(channel.get('type'))[:32]}' is not supported; use rest-hook", "channel.type"
        )
    payload = channel.get("payload")
    if payload is not None and payload.split(";")[0].strip().lower() not in SUPPORTED_PAYLOADS:
        raise unprocessable(
            "channel.payload must be application/fhir+json, or absent for an empty notification",
            "channel.payload",
        )
    criteria = resource.get("criteria")
    if not isinstance(criteria, str):
        raise unprocessable("Subscription.criteria is required", "criteria")
    return SubscriptionSpec(
        status=str(resource.get("status")),
        criteria=parse_subscription_criteria(registry, criteria, base_url),
        endpoint=check_endpoint(channel.get("endpoint"), endpoints),
        payload=payload,
        headers=check_headers(channel.get("header")),
    )
