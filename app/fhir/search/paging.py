"""Opaque keyset cursors for search paging: the sort values and pk of the row a page starts after.

A cursor never holds an offset, so pages stay stable while other clients write: a new resource appears
on the page where it sorts, not by shifting every later page.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from app.fhir.outcome import Category, FhirError

NEXT, PREVIOUS, LAST = "n", "p", "l"


def encode(direction: str, keys: tuple[Any, ...] | None) -> str:
    values = [{"t": k.isoformat()} if isinstance(k, datetime) else k for k in keys or ()]
    raw = orjson.dumps({"d": direction, "k": values})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> tuple[str, tuple[Any, ...] | None]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        direction = data["d"]
        keys = tuple(datetime.fromisoformat(k["t"]) if isinstance(k, dict) else k for k in data["k"])
    except (ValueError, KeyError, TypeError):
        raise FhirError(Category.INVALID, "_cursor is not a valid paging cursor", "value") from None
    if direction not in (NEXT, PREVIOUS, LAST):
        raise FhirError(Category.INVALID, "_cursor is not a valid paging cursor", "value")
    return direction, (keys if direction != LAST else None)
