"""transaction: every entry in ONE unit of work, in the order R4 prescribes (DELETE, POST, PUT/PATCH, GET).

Any failure rolls the whole unit back and becomes the response, naming the entry. Before anything is
written, the targets of all writes are known (new ids for POSTs, matches of conditional creates, updates
and deletes), so references to fullUrls and conditional references can be rewritten in one pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.cpu_pool import validate_many
from app.fhir.interactions.common import (
    match_for_create,
    match_one,
)
from app.fhir.interactions.create import create_in, create_many_in, new_id
from app.fhir.interactions.delete import conditional_delete_in, delete_in
from app.fhir.interactions.transaction.entries import (
    UNCHECKED,
    Entry,
    Verdict,
    entry_error,
    parse_entry,
    raw_label,
)
from app.fhir.interactions.transaction.patching import patch_entry_in
from app.fhir.interactions.transaction.reads import get_in
from app.fhir.interactions.transaction.references import Candidate, resolve_conditional, rewrite_resource
from app.fhir.interactions.transaction.results import EntryResult, delete_result, write_result
from app.fhir.interactions.unit_of_work import in_unit_of_work
from app.fhir.interactions.update import KnownMatch, conditional_update_in, update_in
from app.fhir.outcome import Category, FhirError
from app.fhir.search.criteria import resource_matches, tokens_only
from app.fhir.service import FhirService, WriteResult
from app.store.repository import DuplicateKey, StoredResource

# Bundles with more entries than this are validated in a worker thread, off the event loop.
_THREAD_THRESHOLD = 16
# With worker processes (CPU_PROCESSES), bundles with at least this many resources to validate are
# validated there, in one round trip (~0.2 ms, pickling ~0.01 ms per resource) against ~0.3 ms of
# validation per resource.
_POOL_THRESHOLD = 4


def _parse_all(
    svc: FhirService, ctx: RequestContext, raw: Sequence[Any], verdicts: dict[int, Verdict]
) -> list[Entry]:
    entries = []
    for index, item in enumerate(raw):
        try:
            entries.append(parse_entry(svc, ctx, index, item, True, verdicts.get(index, UNCHECKED)))
        except FhirError as exc:
            raise entry_error(index, raw_label(index, item), _raw_type(item), exc) from None
    return entries


async def _validated_in_pool(svc: FhirService, raw: Sequence[Any]) -> dict[int, Verdict]:
    """The verdicts on the resources of POST and PUT entries, made in the worker processes; an entry
    that turns out malformed is refused by parse_entry before its verdict counts."""
    if svc.cpu is None:
        return {}
    written = {i: r for i, item in enumerate(raw) if (r := _written_resource(item)) is not None}
    if len(written) < _POOL_THRESHOLD:
        return {}
    verdicts = await svc.cpu.run(validate_many, list(written.values()))
    return dict(zip(written, verdicts, strict=True))


def _written_resource(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not isinstance(item.get("resource"), dict):
        return None
    request = item.get("request")
    if not isinstance(request, dict) or request.get("method") not in ("POST", "PUT"):
        return None
    resource: dict[str, Any] = item["resource"]
    return resource


def _raw_type(item: Any) -> str | None:
    resource = item.get("resource") if isinstance(item, dict) else None
    res_type = resource.get("resourceType") if isinstance(resource, dict) else None
    return res_type if isinstance(res_type, str) else None


async def parse_transaction(svc: FhirService, ctx: RequestContext, raw: Sequence[Any]) -> list[Entry]:
    """Every entry parsed and its resource validated, once, before the unit of work starts."""
    verdicts = await _validated_in_pool(svc, raw)
    if len(raw) > _THREAD_THRESHOLD:
        return await asyncio.to_thread(_parse_all, svc, ctx, raw, verdicts)
    return _parse_all(svc, ctx, raw, verdicts)


@contextmanager
def blame(entry: Entry) -> Iterator[None]:
    try:
        yield
    except FhirError as exc:
        raise entry.fail(exc) from None


def _check_static(entries: Sequence[Entry]) -> None:
    """Two writes with the same fullUrl: references to it would be ambiguous."""
    full_urls: dict[str, Entry] = {}
    for entry in entries:
        if entry.full_url and entry.method in ("POST", "PUT", "PATCH"):
            other = full_urls.setdefault(entry.full_url, entry)
            if other is not entry:
                raise entry.fail(
                    FhirError(
                        Category.INVALID, f"fullUrl '{entry.full_url[:120]}' is also used by {other.label}"
                    )
                )


async def run_transaction(svc: FhirService, ctx: RequestContext, entries: list[Entry]) -> list[EntryResult]:
    _check_static(entries)
    post_ids = {e.index: new_id() for e in entries if e.method == "POST"}
    claims = [e.criteria for e in entries if e.criteria is not None and e.method in ("POST", "PUT")]
    # A concurrent writer got there first (a conditional create, an update-as-create, a new version):
    # the whole transaction runs again and sees what it wrote, with the same rules as a single write.
    return await in_unit_of_work(
        svc,
        lambda conn: _Transaction(svc, ctx, conn, entries, post_ids).run(),
        "The transaction",
        if_match=any(e.if_match is not None for e in entries),
        claims=claims,
    )


class _Transaction:
    def __init__(
        self,
        svc: FhirService,
        ctx: RequestContext,
        conn: AsyncConnection,
        entries: list[Entry],
        post_ids: dict[int, str],
    ) -> None:
        self.svc, self.ctx, self.conn, self.entries = svc, ctx, conn, entries
        self.ids = dict(post_ids)  # entry index -> id of the resource the entry writes (or found)
        self.written: dict[tuple[str, str], Entry] = {}
        self.results: dict[int, EntryResult] = {}
        self.found: dict[int, WriteResult] = {}  # conditional creates that matched a stored resource
        self.same_as: dict[int, Entry] = {}  # conditional creates with the criteria of an earlier entry
        self.writes: dict[int, WriteResult] = {}
        # Conditional updates' matches: (match, whether the id is made up, how many unit writes before it).
        self.prematched: dict[int, tuple[StoredResource | None, bool, int]] = {}

    def _of(self, *methods: str) -> list[Entry]:
        return [e for e in self.entries if e.method in methods]

    async def run(self) -> list[EntryResult]:
        deletes, posts, puts = self._of("DELETE"), self._of("POST"), self._of("PUT", "PATCH")
        for entry in deletes + puts:
            if entry.target.res_id is not None:
                self.ids[entry.index] = entry.target.res_id
                self._claim(entry, entry.target.res_id)
        await self._match_conditional_deletes(deletes)
        for entry in deletes:
            await self._delete(entry)
        await self._match_conditional_creates(posts)
        await self._match_conditional_updates(puts)
        mapping = self._full_url_map(posts + puts)
        candidates = [
            Candidate(e, self.ids[e.index])
            for e in posts + puts
            if e.method != "PATCH" and e.index not in self.found and e.index not in self.same_as
        ]
        mapping.update(await resolve_conditional(self.svc, self.ctx, self.conn, posts + puts, candidates))
        await self._create_plain(posts, mapping)
        for entry in posts:
            if entry.index not in self.results:
                await self._create(entry, mapping)
        for entry in puts:
            await self._update(entry, mapping)
        for entry in self._of("GET", "HEAD"):
            with blame(entry):
                result = await get_in(self.svc, self.ctx, self.conn, entry)
            self.results[entry.index] = replace(result, resource=None) if entry.method == "HEAD" else result
        return [self.results[e.index] for e in self.entries]

    def _claim(self, entry: Entry, res_id: str) -> None:
        assert entry.rtype is not None
        key = (entry.rtype.name, res_id)
        other = self.written.setdefault(key, entry)
        if other is not entry:
            raise entry.fail(
                FhirError(
                    Category.INVALID,
                    f"{key[0]}/{res_id} is also written by {other.label}; "
                    "a transaction may write each resource only once",
                )
            )

    async def _match_conditional_deletes(self, deletes: list[Entry]) -> None:
        for entry in deletes:
            if entry.criteria is not None:
                with blame(entry):
                    match = await match_one(self.svc, self.ctx, self.conn, entry.criteria, "delete")
                if match is not None:
                    self._claim(entry, match.res_id)

    async def _delete(self, entry: Entry) -> None:
        assert entry.rtype is not None
        with blame(entry):
            if entry.criteria is not None:
                result = await conditional_delete_in(
                    self.svc, self.ctx, self.conn, entry.criteria, entry.rtype, entry.if_match
                )
            else:
                assert entry.target.res_id is not None
                result = await delete_in(
                    self.svc, self.ctx, self.conn, entry.rtype, entry.target.res_id, entry.if_match
                )
        self.results[entry.index] = delete_result(result)

    async def _match_conditional_creates(self, posts: list[Entry]) -> None:
        first_with: dict[int, Entry] = {}
        for entry in posts:
            if entry.criteria is None:
                continue
            first = first_with.setdefault(entry.criteria.hash, entry)
            if first is not entry:
                # The same ifNoneExist twice: one resource, created (or found) by the first entry.
                self.same_as[entry.index] = first
                self.ids[entry.index] = self.ids[first.index]
                continue
            with blame(entry):
                match = await match_for_create(self.svc, self.ctx, self.conn, entry.criteria)
            if match is not None:
                self.found[entry.index] = match
                self.ids[entry.index] = match.stored.res_id

    async def _match_conditional_updates(self, puts: list[Entry]) -> None:
        for entry in puts:
            if entry.criteria is None:
                continue
            with blame(entry):
                match = await match_one(self.svc, self.ctx, self.conn, entry.criteria, entry.method.lower())
                if match is None and entry.method == "PATCH":
                    raise FhirError(Category.NOT_FOUND, f"No resource matches '{entry.criteria.canonical}'")
            body_id = entry.resource.get("id") if entry.resource else None
            res_id = match.res_id if match else body_id if isinstance(body_id, str) else new_id()
            self.ids[entry.index] = res_id
            self._claim(entry, res_id)
            written = self.svc.repo.unit_writes(self.conn)
            if entry.method == "PUT" and written is not None:
                made_up = match is None and not isinstance(body_id, str)
                self.prematched[entry.index] = (match, made_up, len(written))

    def _full_url_map(self, writes: list[Entry]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for entry in writes:
            if entry.full_url and entry.rtype is not None and entry.index in self.ids:
                mapping[entry.full_url] = f"{entry.rtype.name}/{self.ids[entry.index]}"
        return mapping

    async def _create_plain(self, posts: list[Entry], mapping: dict[str, str]) -> None:
        """Creates in bulk: plain ones, and conditional ones already known to match nothing (most of a
        large transaction, such as a Synthea bundle, is these)."""
        plain = [e for e in posts if e.index not in self.same_as and e.index not in self.found]
        if not plain:
            return
        items = []
        for entry in plain:
            assert entry.rtype is not None
            items.append((entry.rtype, rewrite_resource(entry, mapping), self.ids[entry.index]))
        criteria = [e.criteria for e in plain]
        try:
            results = await create_many_in(self.svc, self.ctx, self.conn, items, criteria)
        except FhirError as exc:
            raise plain[0].fail(exc) if len(plain) == 1 else exc from None
        for entry, result in zip(plain, results, strict=True):
            self.writes[entry.index] = result
            self.results[entry.index] = write_result(result, "POST")

    async def _create(self, entry: Entry, mapping: dict[str, str]) -> None:
        assert entry.rtype is not None
        first = self.same_as.get(entry.index)
        if first is not None:
            source = self.writes.get(first.index) or self.found[first.index]
            self.results[entry.index] = write_result(replace(source, status=200, created=False), "POST")
            return
        if entry.index in self.found:
            self.results[entry.index] = write_result(self.found[entry.index], "POST")
            return
        resource = rewrite_resource(entry, mapping)
        with blame(entry):
            result = await create_in(
                self.svc, self.ctx, self.conn, entry.rtype, resource, entry.criteria, self.ids[entry.index]
            )
            if not result.created:
                key = (result.stored.res_type, result.stored.res_id)
                ours = {(w.stored.res_type, w.stored.res_id) for w in self.writes.values()}
                if key not in self.written and key not in ours:
                    # Another client committed a match after ours was looked up: run the whole
                    # transaction again, as for any lost race.
                    raise DuplicateKey(f"{key[0]}/{key[1]} appeared concurrently")
                raise _moved(entry, result)
        self.writes[entry.index] = result
        self.results[entry.index] = write_result(result, "POST")

    async def _update(self, entry: Entry, mapping: dict[str, str]) -> None:
        assert entry.rtype is not None
        assert entry.resource is not None
        resource = rewrite_resource(entry, mapping)
        res_id = self.ids[entry.index]
        with blame(entry):
            if entry.method == "PATCH":
                result = await patch_entry_in(self.svc, self.ctx, self.conn, entry, res_id, resource)
            elif entry.criteria is not None:
                body = resource if "id" in resource else {**resource, "id": res_id}
                result = await conditional_update_in(
                    self.svc,
                    self.ctx,
                    self.conn,
                    entry.rtype,
                    entry.criteria,
                    body,
                    entry.if_match,
                    self._still_matched(entry),
                )
            else:
                result = await update_in(
                    self.svc, self.ctx, self.conn, entry.rtype, res_id, resource, entry.if_match
                )
            if result.stored.res_id != res_id:
                raise _moved(entry, result)
        self.results[entry.index] = write_result(result, entry.method)

    def _still_matched(self, entry: Entry) -> KnownMatch | None:
        """The entry's match from before the writes, when no write since (of another entry, or of a hook)
        can have changed it: none wrote the matched resource, and none wrote a resource of the type whose
        token rows meet the criteria. Otherwise None: the match is made again."""
        prematched = self.prematched.get(entry.index)
        written = self.svc.repo.unit_writes(self.conn)
        if prematched is None or written is None or entry.criteria is None or not tokens_only(entry.criteria):
            return None
        match, made_up, before = prematched
        assert entry.rtype is not None
        for res_type, res_id, token_rows in written[before:]:
            if res_type != entry.rtype.name:
                continue
            if match is not None and res_id == match.res_id:
                return None
            if resource_matches(entry.criteria, res_id, list(token_rows)):
                return None
        return KnownMatch(match, made_up)


def _moved(entry: Entry, result: WriteResult) -> FhirError:
    """A conditional write whose match changed because of another entry: references already point
    elsewhere, so the transaction cannot be carried out consistently."""
    stored = result.stored
    return FhirError(
        Category.PRECONDITION,
        f"The criteria now match {stored.res_type}/{stored.res_id}, written by another entry of this "
        "transaction; make the entries independent",
        "multiple-matches",
    )
