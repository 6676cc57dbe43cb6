"""Only the pack records core-journal entries; a clinician may set an entry's status, nothing else.

A before_write hook at Stage.DOMAIN: a create of a resource carrying the entry tag is refused unless the
pack writes it; an update of an entry by anyone else may change its verification and clinical status
only (sources, content and tags are the pack's). A delete is left to the access policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.fhir.hooks import Hooks, Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.core_journal.codes import is_entry
from app.resources.core_journal.flow import CORE_JOURNAL

# What a clinician may set on an entry (Kjernejournal: verifisering, avkrefting).
CLINICIAN_SETS = frozenset({"verificationStatus", "clinicalStatus"})
_SERVER_KEPT = frozenset({"meta", "text", "id"})


def _rest(resource: Mapping[str, Any]) -> bytes:
    kept = {k: v for k, v in resource.items() if k not in CLINICIAN_SETS | _SERVER_KEPT}
    tags = resource.get("meta", {}).get("tag", [])
    return orjson.dumps({**kept, "tags": tags}, option=orjson.OPT_SORT_KEYS)


def refusal(
    interaction: str, previous: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> str | None:
    """Why a write by someone other than the pack may not touch core-journal entries (None: it may)."""
    if new is None:
        return None
    was_entry = previous is not None and is_entry(previous)
    if not was_entry:
        if is_entry(new):
            return "Core-journal entries are recorded by the server from the sources that local systems write"
        return None
    if _rest(previous or {}) != _rest(new):
        return "On a core-journal entry only verificationStatus and clinicalStatus can be set"
    return None


async def check_entry_write(event: WriteEvent) -> None:
    if event.ctx.principal == CORE_JOURNAL or event.interaction == "delete":
        return
    why = refusal(event.interaction, event.previous_resource, event.resource)
    if why is not None:
        raise FhirError(Category.UNPROCESSABLE, why, "business-rule")


def install(hooks: Hooks) -> None:
    hooks.before_write.add(Stage.DOMAIN, check_entry_write)
