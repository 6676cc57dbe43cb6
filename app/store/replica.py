"""Reads from a PostgreSQL streaming replica (DATABASE_READ_URL), with read-your-writes.

Reads made on a caller's behalf (the engine API names the caller for the duration of each call,
`acting_for`) go to the replica, unless that caller's own last write may not have reached it yet: after
each committed write the primary's WAL position is noted for the caller, and until the replica has
replayed that far the caller's reads go to the primary. Everything the server reads on its own account
(subscription delivery, jobs, workers) reads the primary: it acts on what was just committed.

The positions are kept per process. A caller whose next request lands on another process has no noted
write there, so strict read-your-writes across processes needs client affinity at the load balancer (the
replica is normally milliseconds behind, so without it the window is small but real).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Who the current engine call acts for (a caller key), or None for the server's own work.
_CALLER: ContextVar[str | None] = ContextVar("helsebro_caller", default=None)
_MAX_CALLERS = 10_000  # noted writers kept per process; the oldest are forgotten first
_REPLAY_CACHE_S = 0.005  # how long one look at the replica's replay position is trusted
_UNKNOWN = 2**64  # a write whose WAL position could not be read
_UNKNOWN_PIN_S = 30.0  # how long its caller then reads the primary (replicas are normally ms behind)
log = logging.getLogger("helsebro.replica")


@contextmanager
def acting_for(caller: str) -> Iterator[None]:
    token = _CALLER.set(caller)
    try:
        yield
    finally:
        _CALLER.reset(token)


def current_caller() -> str | None:
    return _CALLER.get()


def _lsn(text_value: str | None) -> int:
    """A PostgreSQL LSN ("16/B374D848") as a number; 0 for none."""
    if not text_value:
        return 0
    high, low = text_value.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class ReadRouting:
    """Chooses the engine of each read: the replica, or the primary while the caller's write is not on
    the replica yet."""

    def __init__(self, primary: AsyncEngine, replica: AsyncEngine) -> None:
        self.primary = primary
        self.replica = replica
        self._pending: OrderedDict[str, int] = OrderedDict()  # caller -> WAL position of its last write
        self._unknown_since: dict[str, float] = {}  # callers whose last write's position is unknown
        self._replayed = 0
        self._replayed_at = 0.0

    async def engine_for_read(self) -> AsyncEngine:
        caller = current_caller()
        if caller is None:
            return self.primary
        wanted = self._pending.get(caller)
        if wanted is None:
            return self.replica
        if wanted == _UNKNOWN:  # the position could not be read: the primary, for a while
            if time.monotonic() - self._unknown_since.get(caller, 0.0) < _UNKNOWN_PIN_S:
                return self.primary
            self._pending.pop(caller, None)
            self._unknown_since.pop(caller, None)
            return self.replica
        if await self._replay_position() >= wanted:
            self._pending.pop(caller, None)
            return self.replica
        return self.primary

    async def wrote(self) -> None:
        """After a committed write on the current caller's behalf: note where the primary's WAL is."""
        caller = current_caller()
        if caller is None:
            return
        try:
            async with self.primary.connect() as conn:
                position = _lsn((await conn.execute(text("SELECT pg_current_wal_lsn()::text"))).scalar())
        except Exception as exc:  # the write has committed: it must not be answered as failed
            log.warning(
                "could not read the primary's WAL position (%s); reads stay there", type(exc).__name__
            )
            position = _UNKNOWN
            self._unknown_since[caller] = time.monotonic()
        self._pending[caller] = max(position, self._pending.get(caller, 0))
        self._pending.move_to_end(caller)
        while len(self._pending) > _MAX_CALLERS:
            forgotten, _ = self._pending.popitem(last=False)
            self._unknown_since.pop(forgotten, None)

    async def _replay_position(self) -> int:
        now = time.monotonic()
        if now - self._replayed_at > _REPLAY_CACHE_S:
            async with self.replica.connect() as conn:
                found = (await conn.execute(text("SELECT pg_last_wal_replay_lsn()::text"))).scalar()
            self._replayed, self._replayed_at = _lsn(found), time.monotonic()
        return self._replayed
