"""Typed pointcuts where security and domain packs plug into the engine (the engine never imports them).

Hooks run in registration order. A hook raises FhirError to refuse the request; that error reaches the
client as an OperationOutcome and, for write hooks, rolls back the unit of work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext


@dataclass(frozen=True)
class WriteEvent:
    ctx: RequestContext
    conn: AsyncConnection  # the unit of work of the write; hooks may add rows to it (e.g. audit)
    interaction: str  # create, update, delete
    res_type: str
    res_id: str
    resource: dict[str, Any] | None  # None for delete
    version: int


@dataclass(frozen=True)
class ReadEvent:
    ctx: RequestContext
    interaction: str  # read, vread, history-instance, history-type, history-system
    res_type: str | None
    res_id: str | None


BeforeWrite = Callable[[WriteEvent], Awaitable[None]]
AfterWrite = Callable[[WriteEvent], Awaitable[None]]
BeforeRead = Callable[[ReadEvent], Awaitable[None]]


@dataclass
class Hooks:
    before_write: list[BeforeWrite] = field(default_factory=list)
    after_write: list[AfterWrite] = field(default_factory=list)
    before_read: list[BeforeRead] = field(default_factory=list)

    async def run_before_write(self, event: WriteEvent) -> None:
        for hook in self.before_write:
            await hook(event)

    async def run_after_write(self, event: WriteEvent) -> None:
        for hook in self.after_write:
            await hook(event)

    async def run_before_read(self, event: ReadEvent) -> None:
        for hook in self.before_read:
            await hook(event)
