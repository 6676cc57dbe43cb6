"""The one unit-of-work helper: every write interaction (REST, batch entry, transaction) runs its work in
one database transaction through here, with one set of rules for a lost race.

- VersionConflict (another writer committed a new version of the row first): with If-Match the client
  asked for the version it saw, which is gone, so 409; without, the client asked for last-writer-wins, so
  the work runs again on top of the winner.
- A deadlock (PostgreSQL ended this unit: it and another each waited for a row the other held, e.g.
  both updating a resource both had matched): the work runs again.
- DuplicateKey (a concurrent create under the same conditional criteria or client id committed first):
  claims whose resource no longer matches their criteria are dropped, and the work runs again, which then
  finds the winner's resource.

After MAX_ATTEMPTS lost races the client gets 409 with a "try again".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.interactions.common import MAX_ATTEMPTS, clear_stale_claim, retry_exhausted
from app.fhir.outcome import Category, FhirError
from app.fhir.search.criteria import Criteria
from app.fhir.service import FhirService
from app.store.errors import is_deadlock
from app.store.repository import DuplicateKey, VersionConflict

T = TypeVar("T")


async def in_unit_of_work(
    svc: FhirService,
    work: Callable[[AsyncConnection], Awaitable[T]],
    what: str,
    *,
    if_match: bool = False,
    claims: Sequence[Criteria] = (),
) -> T:
    """Run `work(conn)` in a write transaction; `what` names it in errors ("Update of Patient/1"),
    `if_match` says the client asked for a version, `claims` are the conditional criteria it may claim."""
    for _attempt in range(MAX_ATTEMPTS):
        try:
            async with svc.repo.writer() as conn:
                return await work(conn)
        except VersionConflict:
            if if_match:
                raise FhirError(
                    Category.CONFLICT, f"{what}: the resource was changed by a concurrent write", "conflict"
                ) from None
        except DuplicateKey:
            for criteria in claims:
                await clear_stale_claim(svc, criteria)
        except DBAPIError as exc:
            if not is_deadlock(exc):
                raise
    raise retry_exhausted(what)
