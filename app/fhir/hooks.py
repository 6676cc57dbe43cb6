"""Typed pointcuts where security and domain packs plug into the engine (the engine never imports them).

Hooks run in the order of their Stage, stated where they are added (never in the order modules happened
to register them). A hook raises FhirError to refuse the request; that error reaches the client as an
OperationOutcome and, for write hooks, rolls back the unit of work. A before_write hook may also normalise
`WriteEvent.resource` in place: what it leaves is what is stored (e.g. a requested Subscription is stored
as active).
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.store.repository import JudgedRead
from app.store.visibility import RowFilter, Unrestricted


class Stage(IntEnum):
    """When a hook runs relative to the others at the same pointcut."""

    VALIDATE = 10  # content rules (Norwegian identifiers): bad data is refused before anything else
    DOMAIN = 20  # a pack's workflow rules (referral Task transitions)
    FACTS = 30  # access facts derived from the new version (the access decision after a write reads them)
    ACCESS = 40  # scopes, care relations, consent, emergency access; the audit of what was allowed
    NORMALISE = 50  # server-owned adjustments of what is stored (a requested Subscription becomes active)
    # data a pack derives from an allowed write, written through the engine in the write's unit of work
    # (core-journal entries from critical information)
    DERIVE = 55
    NOTIFY = 60  # subscription outbox rows, in the write's unit of work


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

    @property
    def previous_resource(self) -> dict[str, Any] | None:
        """`previous`, parsed (None when there is none)."""
        return orjson.loads(self.previous) if self.previous else None


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
    # What the read judge (Hooks.read_judge) said about this row in the read's own statement; None where
    # the row was read without one (vread, history): the check then decides on its own.
    judged: object | None = None


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
class MatchCheck:
    """One stored resource that the criteria of a conditional create, update, delete or reference
    matched: may the caller be told about it (given its id, or have it acted on)? The guard audits."""

    ctx: RequestContext
    conn: AsyncConnection
    interaction: str  # create, update, delete, reference
    res_type: str
    res_id: str
    pk: int
    version: int


@dataclass(frozen=True)
class OperationEvent:
    """Before an operation that is not a read or write of one resource: server maintenance ($reindex) or
    a bulk export (whose reads are each checked and audited again as searches)."""

    ctx: RequestContext
    name: str  # e.g. "$reindex", "$export"
    res_type: str | None
    res_types: tuple[str, ...] = ()  # the types an operation over several reads ($export's _type)


H = TypeVar("H")


class HookList(Generic[H]):
    """Hooks of one pointcut, kept in Stage order (equal stages in the order added)."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, int, H]] = []

    def add(self, stage: Stage, hook: H) -> None:
        bisect.insort(self._entries, (int(stage), len(self._entries), hook), key=lambda e: e[:2])

    def remove(self, hook: H) -> None:
        self._entries = [e for e in self._entries if e[2] != hook]

    def __contains__(self, hook: object) -> bool:
        return any(h == hook for _, _, h in self._entries)

    def __iter__(self) -> Iterator[H]:
        return (h for _, _, h in self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)


BeforeWrite = Callable[[WriteEvent], Awaitable[None]]
AfterWrite = Callable[[WriteEvent], Awaitable[None]]
BeforeRead = Callable[[ReadEvent], Awaitable[None]]
AfterRead = Callable[[ReadCheck], Awaitable[None]]
AfterSearch = Callable[[SearchEvent], Awaitable[None]]
BeforeOperation = Callable[[OperationEvent], Awaitable[None]]
# Builds the request's row visibility rule from its principal; for a search in one patient's compartment
# (("Patient", id)), a rule that may rely on every row being that patient's.
Visibility = Callable[[RequestContext, tuple[str, str] | None], RowFilter]
# Whether the caller may be told about one stored resource that conditional criteria matched (and audits).
MatchGuard = Callable[["MatchCheck"], Awaitable[bool]]
# Columns for a read's own statement that judge the row it reads (the access decision), handed to the
# after_read hooks as ReadCheck.judged: (ctx, type, id) -> the judged read, or None to read plainly.
ReadJudge = Callable[[RequestContext, str, str], JudgedRead | None]

# Without an access policy installed (AUTH_MODE=off) every row is visible: said once, here.
NO_POLICY = Unrestricted("no access policy installed (AUTH_MODE=off)")


@dataclass
class Hooks:
    before_write: HookList[BeforeWrite] = field(default_factory=HookList)
    after_write: HookList[AfterWrite] = field(default_factory=HookList)
    before_read: HookList[BeforeRead] = field(default_factory=HookList)
    after_read: HookList[AfterRead] = field(default_factory=HookList)
    after_search: HookList[AfterSearch] = field(default_factory=HookList)
    before_operation: HookList[BeforeOperation] = field(default_factory=HookList)
    # Called for every live resource that $reindex rebuilds (interaction "reindex"), inside its batch's
    # unit of work: for derived data kept beside the search index.
    on_reindex: HookList[AfterWrite] = field(default_factory=HookList)
    visibility: Visibility | None = None
    # Judges each resource a conditional request matched; None: everything may be told (AUTH_MODE=off).
    match_guard: MatchGuard | None = None
    # Takes the after_read hooks' decision in a read's own statement; None: they decide after the read.
    read_judge: ReadJudge | None = None
    # The resource types the caller may search (a bulk export without _type exports these); None: all.
    searchable_types: Callable[[RequestContext], frozenset[str] | None] | None = None

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

    def searchable(self, ctx: RequestContext) -> frozenset[str] | None:
        return None if self.searchable_types is None else self.searchable_types(ctx)

    def visible(self, ctx: RequestContext, compartment: tuple[str, str] | None = None) -> RowFilter:
        """The caller's row filter. `compartment`: only for rows that are all in that Patient compartment
        (a compartment search's own matches, never its includes or the resources its chains look into)."""
        return self.visibility(ctx, compartment) if self.visibility is not None else NO_POLICY

    async def may_know(self, check: MatchCheck) -> bool:
        return True if self.match_guard is None else await self.match_guard(check)
