"""The automatic flow: critical information written by any local system reaches the core journal.

A write hook at Stage.DERIVE (after the write was checked and allowed) classifies every created or
updated resource by the rules (classify.py); a match is recorded in the patient's core journal, or merged
into the entry about the same substance or code, through the engine API with the pack's SystemPrincipal
and in the write's own unit of work (`conn`): the source and its entry are committed together or not at
all, and the entry's write passes through the same hooks, policy and audit as any other. A source that
is deleted, stops being critical or changes substance is withdrawn from its entry; an entry left without
sources is deleted. Each source recorded in an entry also gets a Provenance (provenance.py), written in
the same unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.core_journal.classify import (
    Rule,
    Writer,
    claim_criteria,
    classify,
    merge,
    new_entry,
    patient_reference,
    same_concept,
    source_extension,
    source_references,
    withdraw,
)
from app.resources.core_journal.codes import ENTRY_TAG, TAG_SYSTEM, is_entry
from app.resources.core_journal.provenance import source_provenance

CORE_JOURNAL = SystemPrincipal(
    "core-journal", "critical information registered in a local system is recorded in the core journal"
)
ENTRY_TOKEN = f"{TAG_SYSTEM}|{ENTRY_TAG['code']}"
MAX_ENTRIES = 1_000  # core-journal entries of one type per patient; more is a data anomaly
MAX_ATTEMPTS = 5  # concurrent changes of one entry before the write is refused (409, try again)
DELETE: dict[str, Any] = {}  # what a change returns when the entry is to be deleted (its last source went)


@dataclass(frozen=True)
class CoreJournalFlow:
    engine: Engine
    rules: tuple[Rule, ...]

    async def after_write(self, event: WriteEvent) -> None:
        if event.resource is not None and is_entry(event.resource):
            return  # the pack's own entries (and a clinician setting their status)
        rule = classify(event.resource, self.rules) if event.resource is not None else None
        previous = event.previous_resource if event.interaction != "create" else None
        was_critical = previous is not None and classify(previous, self.rules) is not None
        if rule is None and not was_critical:
            return
        about = event.resource if rule is not None else previous
        patient = patient_reference(about or {})
        if patient is None:
            return
        ctx = RequestContext(event.ctx.base, CORE_JOURNAL, event.ctx.request_id)
        reference = f"{event.res_type}/{event.res_id}"
        criteria = [("patient", patient), ("_tag", ENTRY_TOKEN)]
        entries = await self.engine.search(ctx, event.res_type, criteria, MAX_ENTRIES, conn=event.conn)
        entries.sort(key=lambda e: str(e["id"]))
        if rule is None or event.resource is None:  # deleted, or no longer critical
            await self._withdraw(ctx, event, entries, reference)
            return
        same = [e for e in entries if same_concept(e, event.resource)]
        # a source that changed substance leaves the entries about its old one
        await self._withdraw(ctx, event, [e for e in entries if e not in same], reference)
        extension = source_extension(reference, event.resource, Writer.of(event.ctx.principal))
        if not same:
            entry = new_entry(event.resource, rule, extension)
            claim = claim_criteria(patient, event.resource, ENTRY_TOKEN)
            created = await self.engine.create(ctx, event.res_type, entry, claim, conn=event.conn)
            if created.created:
                await self._provenance(ctx, event, created.stored.res_id, patient, extension, created=True)
            if created.created or created.stored.content is None:
                return
            same = [orjson.loads(created.stored.content)]  # another writer's entry: merge into it
        source = event.resource
        entry_id = str(same[0]["id"])
        if await self._revise(ctx, event, same[0], lambda entry: merge(entry, source, extension)):
            await self._provenance(ctx, event, entry_id, patient, extension, created=False)

    async def _provenance(
        self,
        ctx: RequestContext,
        event: WriteEvent,
        entry_id: str,
        patient: str,
        extension: dict[str, Any],
        *,
        created: bool,
    ) -> None:
        """The Provenance of the source just recorded in the entry, in the same unit of work."""
        recorded = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        entry = f"{event.res_type}/{entry_id}"
        provenance = source_provenance(entry, patient, extension, recorded, created)
        await self.engine.create(ctx, "Provenance", provenance, conn=event.conn)

    async def _withdraw(
        self, ctx: RequestContext, event: WriteEvent, entries: list[dict[str, Any]], reference: str
    ) -> None:
        for entry in entries:
            if reference in source_references(entry):
                await self._revise(ctx, event, entry, lambda e: withdraw(e, reference) or DELETE)

    async def _revise(
        self,
        ctx: RequestContext,
        event: WriteEvent,
        entry: dict[str, Any],
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> bool:
        """Write `change(entry)` (None: nothing to do; DELETE: delete the entry) under If-Match; whether
        anything was written. Another writer's concurrent change to the entry has then been waited for (the
        row lock) and fails the If-Match: the entry is read again in this unit of work and changed again,
        so no source is lost."""
        res_type, res_id = event.res_type, str(entry["id"])
        for _attempt in range(MAX_ATTEMPTS):
            new = change(entry)
            if new is None:
                return False
            version = int(entry["meta"]["versionId"])
            try:
                if new is DELETE:
                    await self.engine.delete(ctx, res_type, res_id, version, conn=event.conn)
                else:
                    await self.engine.update(ctx, res_type, res_id, new, version, conn=event.conn)
                return True
            except FhirError as error:
                if error.category is not Category.PRECONDITION:
                    raise
            found = await self.engine.search(ctx, res_type, [("_id", res_id)], 1, conn=event.conn)
            if not found:
                return False  # deleted meanwhile (its last source withdrawn)
            entry = found[0]
        raise FhirError(Category.CONFLICT, "The core-journal entry kept changing; try again", "transient")


def install(engine: Engine, rules: tuple[Rule, ...]) -> CoreJournalFlow:
    flow = CoreJournalFlow(engine, rules)
    engine.svc.hooks.after_write.add(Stage.DERIVE, flow.after_write)
    return flow
