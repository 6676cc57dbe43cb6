"""Resource types kept outside the versioned resource tables, answered by a store of their own.

The audit trail is append-only and written on every audited read: it lives in tables of its own, and its
store answers read, vread, search and history of its type with the same FHIR shapes (stored bytes, searchset
and history Bundles) and its own access rules. A type's store is registry data (ResourceType.store): the
interactions hand such a type to it before touching the resource tables.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.store.repository import CurrentVersion, HistoryRow


class TypeStore(Protocol):
    async def read(self, ctx: RequestContext, res_id: str) -> CurrentVersion: ...

    async def vread(self, ctx: RequestContext, res_id: str, version_id: str) -> HistoryRow: ...

    async def search(
        self,
        ctx: RequestContext,
        pairs: list[tuple[str, str]],
        path: str,
        strict: bool,
        compartment: tuple[str, str] | None,
        conn: AsyncConnection | None,
    ) -> bytes: ...

    async def history(self, ctx: RequestContext, res_id: str | None, params: dict[str, str]) -> bytes: ...
