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
    # `conn`: the caller's connection (a batch's or transaction's), or None to take one; a store never
    # holds a second connection while the caller holds one.
    async def read(
        self, ctx: RequestContext, res_id: str, conn: AsyncConnection | None
    ) -> CurrentVersion: ...

    async def vread(
        self, ctx: RequestContext, res_id: str, version_id: str, conn: AsyncConnection | None
    ) -> HistoryRow: ...

    async def search(
        self,
        ctx: RequestContext,
        pairs: list[tuple[str, str]],
        path: str,
        strict: bool,
        compartment: tuple[str, str] | None,
        conn: AsyncConnection | None,
    ) -> bytes: ...

    async def history(
        self, ctx: RequestContext, res_id: str | None, params: dict[str, str], conn: AsyncConnection | None
    ) -> bytes: ...
