"""Typed pointcuts where security and domain packs plug into the engine (the engine never imports them).

Hooks run in registration order. A hook raises FhirError to refuse the request; that error reaches the
client as an OperationOutcome and, for write hooks, rolls back the unit of work. A before_write hook may
also normalise `WriteEvent.resource` in place: what it leaves is what is stored (e.g. a requested
Subscription is stored as active).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.store.visibility import RowFilter


@dataclass(frozen=True)
class WriteEvent:
    ctx: RequestContext
    conn: AsyncConnection  # the unit of work of the write; hooks may add rows to it (e.g. audit)
    interaction: str  # create, update, delete
    res_type: str
    res_id: str
    resource: dict[str, Any] | None  # None for delete
    version: int
    pk: int | None = None  # the stored row's key (None only before a create has inserted it)
    previous: bytes | None = None  # stored content of the version an update or delete replaces


@dataclass(frozen=True)
class ReadEvent:
    """Before a read-type interaction touches the store (scope checks, emergency access grants)."""

    ctx: RequestContext
    interaction: str  # read, vread, history-instance, history-type, history-system, search, everything
    res_type: str | None
    res_id: str | None
    compartment: tuple[str, str] | None = None  # ("Patient", id) for compartment searches and $everything
    params: tuple[tuple[str, str], ...] = ()  # search parameters as given
    conn: AsyncConnection | None = None  # the search's connection, if it has one open already


@dataclass(frozen=True)
class ReadCheck:
    """After one stored resource was found for read, vread or instance history, before it is returned."""

    ctx: RequestContext
    conn: AsyncConnection
    interaction: str
    res_type: str
    res_id: str
    pk: int
    version: int


@dataclass(frozen=True)
class Returned:
    res_type: str
    res_id: str
    version: int
    pk: int


@dataclass(frozen=True)
class SearchEvent:
    """After a search or type/system history produced its page: what was returned (for the audit)."""

    ctx: RequestContext
    conn: AsyncConnection
    interaction: str  # search, everything, history-type, history-system
    res_types: tuple[str, ...]
    query: str  # the request's parameters as a query string
    compartment: tuple[str, str] | None
    returned: Sequence[Returned]


@dataclass(frozen=True)
class OperationEvent:
    """Before a server-maintenance operation ($reindex) that is not a read or write of one resource."""

    ctx: RequestContext
    name: str  # e.g. "$reindex"
    res_type: str | None


BeforeWrite = Callable[[WriteEvent], Awaitable[None]]
AfterWrite = Callable[[WriteEvent], Awaitable[None]]
BeforeRead = Callable[[ReadEvent], Awaitable[None]]
AfterRead = Callable[[ReadCheck], Awaitable[None]]
AfterSearch = Callable[[SearchEvent], Awaitable[None]]
BeforeOperation = Callable[[OperationEvent], Awaitable[None]]
# Builds the request's row visibility rule (None: everything is visible).
Visibility = Callable[[RequestContext], RowFilter | None]


@dataclass
class Hooks:
    before_write: list[BeforeWrite] = field(default_factory=list)
    after_write: list[AfterWrite] = field(default_factory=list)
    before_read: list[BeforeRead] = field(default_factory=list)
    after_read: list[AfterRead] = field(default_factory=list)
    after_search: list[AfterSearch] = field(default_factory=list)
    before_operation: list[BeforeOperation] = field(default_factory=list)
    # Called for every live resource that $reindex rebuilds (interaction "reindex"), inside its batch's
    # unit of work: for derived data kept beside the search index.
    on_reindex: list[AfterWrite] = field(default_factory=list)
    visibility: Visibility | None = None

    async def run_before_write(self, event: WriteEvent) -> None:
        for hook in self.before_write:
            await hook(event)

    async def run_after_write(self, event: WriteEvent) -> None:
        for hook in self.after_write:
            await hook(event)

    async def run_before_read(self, event: ReadEvent) -> None:
        for hook in self.before_read:
            await hook(event)

    async def run_after_read(self, check: ReadCheck) -> None:
        for hook in self.after_read:
            await hook(check)

    async def run_after_search(self, event: SearchEvent) -> None:
        for hook in self.after_search:
            await hook(event)

    async def run_before_operation(self, event: OperationEvent) -> None:
        for hook in self.before_operation:
            await hook(event)

    async def run_on_reindex(self, event: WriteEvent) -> None:
        for hook in self.on_reindex:
            await hook(event)

    def visible(self, ctx: RequestContext) -> RowFilter | None:
        return self.visibility(ctx) if self.visibility is not None else None
