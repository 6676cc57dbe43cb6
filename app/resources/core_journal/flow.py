"""The automatic flow: critical information written by any local system reaches the core journal.

A write hook at Stage.DERIVE (after the write was checked and allowed) classifies every created or
updated resource by the rules (classify.py); a match is recorded in the patient's core journal, or merged
into the entry about the same substance or code, through the engine API with the pack's SystemPrincipal
and in the write's own unit of work (`conn`): the source and its entry are committed together or not at
all, and the entry's write passes through the same hooks, policy and audit as any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.resources.core_journal.classify import (
    Rule,
    Writer,
    classify,
    merge,
    new_entry,
    patient_reference,
    same_concept,
    source_extension,
)
from app.resources.core_journal.codes import ENTRY_TAG, TAG_SYSTEM

CORE_JOURNAL = SystemPrincipal(
    "core-journal", "critical information registered in a local system is recorded in the core journal"
)
ENTRY_TOKEN = f"{TAG_SYSTEM}|{ENTRY_TAG['code']}"
MAX_ENTRIES = 1_000  # core-journal entries of one type per patient; more is a data anomaly


@dataclass(frozen=True)
class CoreJournalFlow:
    engine: Engine
    rules: tuple[Rule, ...]

    async def after_write(self, event: WriteEvent) -> None:
        if event.interaction not in ("create", "update") or event.resource is None:
            return
        rule = classify(event.resource, self.rules)
        patient = patient_reference(event.resource) if rule is not None else None
        if rule is None or patient is None:
            return
        ctx = RequestContext(event.ctx.base, CORE_JOURNAL, event.ctx.request_id)
        reference = f"{event.res_type}/{event.res_id}"
        extension = source_extension(reference, event.resource, Writer.of(event.ctx.principal))
        criteria = [("patient", patient), ("_tag", ENTRY_TOKEN)]
        entries = await self.engine.search(ctx, event.res_type, criteria, MAX_ENTRIES, conn=event.conn)
        same = sorted((e for e in entries if same_concept(e, event.resource)), key=lambda e: str(e["id"]))
        if not same:
            await self.engine.create(
                ctx, event.res_type, new_entry(event.resource, rule, extension), conn=event.conn
            )
            return
        merged = merge(same[0], event.resource, extension)
        if merged is not None:
            await self.engine.update(ctx, event.res_type, str(merged["id"]), merged, conn=event.conn)


def install(engine: Engine, rules: tuple[Rule, ...]) -> CoreJournalFlow:
    flow = CoreJournalFlow(engine, rules)
    engine.svc.hooks.after_write.add(Stage.DERIVE, flow.after_write)
    return flow
