"""Per-entry outcomes and the response Bundle, assembled from stored bytes (nothing is re-parsed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from app.fhir.bundle import bundle_bytes, entry_bytes
from app.fhir.interactions.delete import DeleteResult
from app.fhir.outcome import FhirError, informational
from app.fhir.service import HIDDEN_MATCH_MESSAGE, WriteResult, fhir_instant


@dataclass(frozen=True)
class EntryResult:
    status: int
    resource: bytes | None = None
    location: str | None = None
    version: int | None = None
    last_modified: datetime | None = None
    message: str = ""  # what return=OperationOutcome says about a write
    outcome: dict[str, Any] | None = None  # an error's OperationOutcome (batch)
    is_write: bool = True


def write_result(result: WriteResult, method: str) -> EntryResult:
    stored = result.stored
    if result.hidden:
        # A conditional create matched a resource the caller may not read: where it is, nothing more.
        return EntryResult(
            200,
            location=f"{stored.res_type}/{stored.res_id}",
            message=HIDDEN_MATCH_MESSAGE,
            outcome=informational(HIDDEN_MATCH_MESSAGE),
        )
    verb = "Created" if result.created else "Found existing" if method == "POST" else "Updated"
    return EntryResult(
        result.status,
        result.content,
        f"{stored.res_type}/{stored.res_id}/_history/{stored.version}",
        stored.version,
        stored.last_updated,
        f"{verb} {stored.res_type}/{stored.res_id} (version {stored.version})",
    )


def delete_result(result: DeleteResult) -> EntryResult:
    return EntryResult(204, version=result.version, message=result.message)


def read_result(content: bytes | None, version: int | None, last_modified: datetime | None) -> EntryResult:
    return EntryResult(200, content, None, version, last_modified, is_write=False)


def error_result(error: FhirError) -> EntryResult:
    return EntryResult(error.status, outcome=error.outcome(), is_write=False)


def _status_text(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _entry(result: EntryResult, prefer_return: str) -> bytes:
    response: dict[str, Any] = {"status": _status_text(result.status)}
    if result.location:
        response["location"] = result.location
    if result.version is not None:
        response["etag"] = f'W/"{result.version}"'
    if result.last_modified is not None:
        response["lastModified"] = fhir_instant(result.last_modified)
    resource = result.resource
    if result.outcome is not None:
        response["outcome"] = result.outcome
    elif result.is_write and prefer_return != "representation":
        resource = None
        if prefer_return == "OperationOutcome":
            response["outcome"] = informational(result.message)
            if result.status == 204:  # a deletion now has a body, as on the REST endpoint
                response["status"] = _status_text(200)
    return entry_bytes({"response": response}, resource)


def response_bundle(bundle_type: str, results: list[EntryResult], prefer_return: str) -> bytes:
    return bundle_bytes(f"{bundle_type}-response", (_entry(r, prefer_return) for r in results), [])
