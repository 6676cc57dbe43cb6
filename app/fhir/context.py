"""Per-request facts the interactions need, independent of HTTP (adapters build one too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestContext:
    base_url: str  # e.g. http://127.0.0.1:8080 (no trailing slash)
    request_id: str = ""
    # Filled by the security layer when it is plugged in (who is asking, on whose behalf, why).
    principal: dict[str, Any] = field(default_factory=dict)
