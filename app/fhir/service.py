"""The engine's service layer: what the REST API, adapters and domain packs call to act on resources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from app.fhir.cpu_pool import CpuPool
from app.fhir.hooks import Hooks
from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry, ResourceType
from app.fhir.search.parse import SearchLimits
from app.fhir.stored_principals import OpenAccess, StoredPrincipals
from app.store.repository import Repository, StoredResource


def now_ms() -> datetime:
    """UTC now at millisecond precision: what meta.lastUpdated shows is exactly what is stored."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def fhir_instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FhirService:
    registry: Registry
    repo: Repository
    hooks: Hooks = field(default_factory=Hooks)
    allow_update_create: bool = True
    # A local reference must name a resource that exists (interactions/integrity.py); off for bulk loads.
    referential_integrity: bool = True
    default_page_size: int = 50
    max_page_size: int = 1000
    # This server's configured base URL (BASE_URL): absolute references on it are local, the same on write,
    # in searches, on $reindex, in the access facts and in the audit. Empty only with authentication off,
    # and then no absolute reference is local (links still use the request's URL).
    base_url: str = ""
    search_limits: SearchLimits = field(default_factory=SearchLimits)
    # Who later work acts for (subscription delivery, jobs): the security layer's, with authentication on.
    principals: StoredPrincipals = field(default_factory=OpenAccess)
    # Tells this process's job worker that a job was submitted (it polls otherwise).
    job_waker: Callable[[], None] = lambda: None
    # Worker processes for pure CPU work (CPU_PROCESSES); None does it in this process.
    cpu: CpuPool | None = None

    def resource_type(self, name: str) -> ResourceType:
        rtype = self.registry.get(name)
        if rtype is None:
            raise FhirError(
                Category.NOT_FOUND, f"Unknown or unsupported resource type '{name[:64]}'", "not-supported"
            )
        return rtype


HIDDEN_MATCH_MESSAGE = (
    "A resource matching the criteria exists; you have no access to its content, so it is not returned"
)


@dataclass(frozen=True)
class WriteResult:
    status: int  # 200 or 201
    stored: StoredResource
    created: bool = False
    # A conditional create matched a resource the caller may not read: its location is told, never its
    # content or version.
    hidden: bool = False

    @property
    def content(self) -> bytes:
        assert self.stored.content is not None
        return self.stored.content


_SERVER_META = ("versionId", "lastUpdated")


def canonical_bytes(resource: dict[str, Any], res_id: str, version: int, at: datetime) -> bytes:
    """The stored form: resourceType, id, meta first, server-owned meta fields set, compact UTF-8 JSON."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _SERVER_META}
    out: dict[str, Any] = {
        "resourceType": resource["resourceType"],
        "id": res_id,
        "meta": {"versionId": str(version), "lastUpdated": fhir_instant(at), **meta},
    }
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return orjson.dumps(out)


def same_content(stored: bytes, resource: dict[str, Any]) -> bool:
    """True when a write would only change server-owned metadata (a no-op update)."""
    current = orjson.loads(stored)

    def strip(doc: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in doc.items() if k not in ("meta", "id")}
        meta = {k: v for k, v in (doc.get("meta") or {}).items() if k not in _SERVER_META}
        if meta:
            body["meta"] = meta
        return body

    return strip(current) == strip(resource)
