"""batch: every entry on its own, through the public interaction functions (validation, retries, one unit
of work each). A failing entry becomes that entry's response; the others are unaffected."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.interactions import create as create_ix
from app.fhir.interactions import delete as delete_ix
from app.fhir.interactions import update as update_ix
from app.fhir.interactions.transaction.entries import Entry, parse_entry
from app.fhir.interactions.transaction.patching import patch_in_batch
from app.fhir.interactions.transaction.reads import get_in
from app.fhir.interactions.transaction.results import (
    EntryResult,
    delete_result,
    error_result,
    write_result,
)
from app.fhir.outcome import Category, FhirError
from app.fhir.service import FhirService

error_log = logging.getLogger("helsebro.errors")


async def run_batch(svc: FhirService, ctx: RequestContext, raw: Sequence[Any]) -> list[EntryResult]:
    results = []
    for index, item in enumerate(raw):
        try:
            entry = parse_entry(svc, ctx, index, item, transaction=False)
            results.append(await _run_entry(svc, ctx, entry))
        except FhirError as exc:
            results.append(error_result(exc))
        except Exception as exc:
            # The entries before this one are committed: report this one and carry on. Frames only,
            # never the message (driver errors quote SQL parameters, i.e. patient data).
            frames = "".join(traceback.format_tb(exc.__traceback__))
            error_log.error(
                "unhandled %s in batch entry %d id=%s\n%s", type(exc).__name__, index, ctx.request_id, frames
            )
            message = f"Internal server error; the incident has been logged with id {ctx.request_id}"
            results.append(error_result(FhirError(Category.FAULT, message, "exception")))
    return results


async def _run_entry(svc: FhirService, ctx: RequestContext, entry: Entry) -> EntryResult:
    res_type, res_id = entry.target.res_type, entry.target.res_id
    if entry.method in ("GET", "HEAD"):
        async with svc.repo.reader() as conn:
            result = await get_in(svc, ctx, conn, entry)
        return replace(result, resource=None) if entry.method == "HEAD" else result
    assert res_type is not None
    if entry.method == "POST":
        created = await create_ix.create(svc, ctx, res_type, entry.resource, entry.if_none_exist)
        return write_result(created, "POST")
    if entry.method == "PUT":
        if res_id is None:
            updated = await update_ix.conditional_update(
                svc, ctx, res_type, entry.target.query, entry.resource, entry.if_match
            )
        else:
            updated = await update_ix.update(svc, ctx, res_type, res_id, entry.resource, entry.if_match)
        return write_result(updated, "PUT")
    if entry.method == "PATCH":
        return write_result(await patch_in_batch(svc, ctx, entry), "PATCH")
    if res_id is None:
        deleted = await delete_ix.conditional_delete(svc, ctx, res_type, entry.target.query, entry.if_match)
    else:
        deleted = await delete_ix.delete(svc, ctx, res_type, res_id, entry.if_match)
    return delete_result(deleted)
