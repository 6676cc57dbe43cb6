"""batch and transaction (http://hl7.org/fhir/R4/http.html#transaction): `POST /` with a Bundle.

process_bundle is the one entry point: the REST route calls it, and so can ingestion and adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.interactions.transaction.batch import run_batch
from app.fhir.interactions.transaction.entries import bundle_entries
from app.fhir.interactions.transaction.results import EntryResult, response_bundle
from app.fhir.interactions.transaction.transaction import parse_transaction, run_transaction
from app.fhir.service import FhirService


async def process_bundle(svc: FhirService, ctx: RequestContext, body: Any, prefer_return: str) -> bytes:
    """The batch-response or transaction-response Bundle for a parsed batch or transaction Bundle.

    A failing transaction raises FhirError naming the entry (nothing is written); a failing batch entry
    only gets an error response of its own. `prefer_return` is representation, minimal or OperationOutcome.
    """
    bundle_type, raw = bundle_entries(body)
    results = await run_bundle(svc, ctx, bundle_type, raw)
    return response_bundle(bundle_type, results, prefer_return)


async def run_bundle(
    svc: FhirService, ctx: RequestContext, bundle_type: str, raw: Sequence[Any]
) -> list[EntryResult]:
    """Each entry's result, in the Bundle's order (see process_bundle)."""
    if bundle_type == "batch":
        return await run_batch(svc, ctx, raw)
    return await run_transaction(svc, ctx, await parse_transaction(svc, ctx, raw))


__all__ = ["EntryResult", "process_bundle", "run_bundle"]
