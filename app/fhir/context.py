"""Per-request facts the interactions need, independent of HTTP (adapters build one too)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass
class RequestContext:
    # Public base URL without trailing slash, e.g. http://127.0.0.1:8080. A callable defers deriving it from
    # the HTTP request until something (a Location header, a Bundle link) needs it.
    base: str | Callable[[], str]
    request_id: str = ""
    # Who is asking, as the security layer verified it (None: no authentication in force). The engine only
    # carries it to the hooks.
    principal: Any = None
    # Per-request state of the hooks (e.g. a visibility rule built once per request).
    scratch: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def base_url(self) -> str:
        return self.base if isinstance(self.base, str) else self.base()
