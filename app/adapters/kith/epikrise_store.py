"""What a received Epikrise changes, read through the engine with the caller's context: the transaction
(`app.adapters.epikrise.to_fhir`) plus the revocation of what an earlier version of the same document made
and this one no longer has (a change with fewer diagnoses, a cancellation that repeats less). A
cancellation of an epikrise not received here is refused (X99): there is nothing to revoke. A change keeps
what the GP has done with a follow-up Task since (its status, outputs, notes, owner) and rewrites its text.
"""

from __future__ import annotations

from typing import Any

from app.adapters.epikrise.model import Epikrise
from app.adapters.epikrise.to_fhir import (
    DOCUMENT_SYSTEM,
    REVOKABLE,
    document_key,
    epikrise_to_bundle,
    part_values,
    revoke,
)
from app.adapters.kith import _fhir_common as f
from app.adapters.kith import intake
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import MessageKind
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.search.values import escape_value

Json = dict[str, Any]
READ_CAP = 500  # parts of one epikrise of one type
_PROGRESS = ("status", "businessStatus", "statusReason", "executionPeriod", "output", "note", "owner")


def _part(resource: Json) -> str | None:
    return next(
        (i.get("value") for i in resource.get("identifier", []) if i.get("system") == f.DOCUMENT_PART_SYSTEM),
        None,
    )


async def changes(engine: Engine, ctx: RequestContext, message: Epikrise) -> tuple[Json, intake.Anchor]:
    bundle, anchor = epikrise_to_bundle(message)
    token = f"{DOCUMENT_SYSTEM}|{escape_value(document_key(message))}"
    cancel = message.kind is MessageKind.CANCEL
    # Every part is written with its Composition (one transaction): a document without one has no parts
    # to revoke or keep, and a new document is not looked for type by type.
    if not await engine.search(ctx, "Composition", [("identifier", token)], 1):
        if cancel:
            raise KithError(AppRecError.OTHER, "the cancellation names an epikrise not received here")
        return bundle, anchor
    kept = part_values(bundle)
    ours = {
        _part(e["resource"]): e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Task"
    }
    for res_type in REVOKABLE:
        for stored in await engine.search(ctx, res_type, [("identifier", token)], READ_CAP):
            part = _part(stored)
            if part not in kept:
                bundle["entry"].append(intake.update_entry(revoke(stored)))
            elif res_type == "Task" and not cancel and part in ours:
                _keep_progress(ours[part], stored)
    return bundle, anchor


def _keep_progress(task: Json, stored: Json) -> None:
    """A change rewrites the follow-up Task's text, not what the GP has done with it since."""
    if stored.get("status") in (None, "requested", "cancelled"):
        return
    for key in _PROGRESS:
        if key in stored:
            task[key] = stored[key]
