"""Bundles assembled from stored bytes: entries embed each resource's stored JSON without re-parsing it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson

from app.fhir.service import fhir_instant, now_ms


def entry_bytes(fields: dict[str, Any], resource: bytes | None) -> bytes:
    """One Bundle.entry; `resource` is spliced in as raw JSON after the other fields."""
    head = orjson.dumps(fields)
    if resource is None:
        return head
    if head == b"{}":
        return b'{"resource":' + resource + b"}"
    return head[:-1] + b',"resource":' + resource + b"}"


def bundle_bytes(
    bundle_type: str,
    entries: Iterable[bytes],
    links: list[tuple[str, str]],
    total: int | None = None,
) -> bytes:
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": fhir_instant(now_ms())},
        "type": bundle_type,
    }
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": rel, "url": url} for rel, url in links]
    listed = list(entries)
    if not listed:
        return orjson.dumps(head)  # FHIR JSON has no empty arrays: no entries, no "entry"
    return orjson.dumps(head)[:-1] + b',"entry":[' + b",".join(listed) + b"]}"
