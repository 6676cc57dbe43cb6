"""The flow's handling of a concurrent writer, with a stand-in engine: an entry changed by another
writer meanwhile (If-Match fails once the row lock was waited for) is read again and changed again, and
a create whose claim another writer's entry already holds merges into that entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson

from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.hooks import WriteEvent
from app.fhir.outcome import Category, FhirError
from app.fhir.service import WriteResult
from app.resources.core_journal.classify import (
    Writer,
    load_rules,
    merge,
    new_entry,
    source_extension,
    source_references,
)
from app.resources.core_journal.flow import CoreJournalFlow
from app.store.repository import StoredResource
from tests.resources.core_journal.builders import PENICILLIN, allergy

RULES = load_rules()
HOSPITAL = Writer(("998765432",), "1", "EPJ")


def stored_entry(entry_id: str, version: int, *refs: str) -> dict[str, Any]:
    source = allergy(PENICILLIN)
    entry = new_entry(source, RULES[0], source_extension(refs[0], source, HOSPITAL))
    for ref in refs[1:]:
        entry = merge(entry, source, source_extension(ref, source, HOSPITAL)) or entry
    return {**entry, "id": entry_id, "meta": {**entry["meta"], "versionId": str(version)}}


@dataclass
class StandIn:
    """The engine calls the flow makes, against one entry that another writer changes once."""

    current: dict[str, Any] | None
    stale_once: bool = True
    created_elsewhere: dict[str, Any] | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)
    provenances: list[dict[str, Any]] = field(default_factory=list)

    async def search(
        self, ctx: RequestContext, res_type: str, criteria: Any, limit: int, **kw: Any
    ) -> list[Any]:
        return [self.current] if self.current is not None else []

    async def update(
        self,
        ctx: RequestContext,
        res_type: str,
        res_id: str,
        body: Any,
        if_match: int | None = None,
        **kw: Any,
    ) -> None:
        assert self.current is not None
        if self.stale_once:  # another writer added its source first
            self.stale_once = False
            self.current = stored_entry(
                res_id, 2, *sorted(source_references(self.current)), "AllergyIntolerance/other"
            )
            raise FhirError(Category.PRECONDITION, "stale", "conflict")
        assert if_match == int(self.current["meta"]["versionId"])
        self.updates.append(body)

    async def create(
        self, ctx: RequestContext, res_type: str, body: Any, if_none_exist: str | None = None, **kw: Any
    ) -> WriteResult:
        if res_type == "Provenance":  # one per source recorded in the entry
            self.provenances.append(body)
            return WriteResult(201, StoredResource(2, res_type, "p", 1, datetime.now(UTC), False, b"{}"))
        assert if_none_exist is not None
        assert "code=" in if_none_exist
        existing = self.created_elsewhere
        assert existing is not None
        self.current = existing
        row = StoredResource(1, res_type, existing["id"], 1, datetime.now(UTC), False, orjson.dumps(existing))
        return WriteResult(200, row)


def event(resource: dict[str, Any], res_id: str) -> WriteEvent:
    ctx = RequestContext("http://fhir.test", object())
    return WriteEvent(ctx, cast(Any, None), "create", "AllergyIntolerance", res_id, resource, 1)


async def test_a_concurrent_change_of_the_entry_is_read_again_and_no_source_is_lost() -> None:
    engine = StandIn(stored_entry("e", 1, "AllergyIntolerance/first"))
    flow = CoreJournalFlow(cast(Engine, engine), RULES)
    await flow.after_write(event(allergy(PENICILLIN), "mine"))
    [written] = engine.updates
    assert source_references(written) == {
        "AllergyIntolerance/first",
        "AllergyIntolerance/other",
        "AllergyIntolerance/mine",
    }
    [provenance] = engine.provenances  # once, after the write that succeeded
    assert provenance["target"] == [{"reference": "AllergyIntolerance/e"}, {"reference": "Patient/kari"}]
    assert provenance["entity"] == [{"role": "source", "what": {"reference": "AllergyIntolerance/mine"}}]


async def test_a_create_that_finds_another_writers_entry_merges_into_it() -> None:
    engine = StandIn(
        None, stale_once=False, created_elsewhere=stored_entry("e", 1, "AllergyIntolerance/other")
    )
    flow = CoreJournalFlow(cast(Engine, engine), RULES)
    await flow.after_write(event(allergy(PENICILLIN), "mine"))
    [written] = engine.updates
    assert source_references(written) == {"AllergyIntolerance/other", "AllergyIntolerance/mine"}
