"""$export (FHIR Bulk Data Access 2.0): the kick-off's parameters, and the job's steps.

Each step is one page of the caller's own search (policy row filters, scope checks and audit apply as to
any search), written as one NDJSON file. Files are per type, in pages of the job's batch size; the search
is bounded by the export's transactionTime, so the files hold the data as it was at kick-off (a resource
changed later is left out, as the specification allows) and a resumed job goes on from its cursor.

Levels: system (every type the caller may search), Patient (every patient's compartment) and Group (the
compartments of the Group's members, as the Group lists them at kick-off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.fhir.context import RequestContext
from app.fhir.hooks import OperationEvent
from app.fhir.interactions.history import parse_instant
from app.fhir.interactions.read import read_reference
from app.fhir.interactions.search import PatientSet, SearchRequest, search_page, single_param
from app.fhir.jobs.spec import JobKind, Output, Step
from app.fhir.outcome import Category, FhirError, Issue, operation_outcome
from app.fhir.registry import patient_compartment
from app.fhir.service import FhirService, fhir_instant, now_ms

NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = frozenset({NDJSON, "application/ndjson", "ndjson"})
# Bulk Data parameters this server does not offer: refused with Prefer: handling=strict, else ignored and
# named in the manifest's error file (as the specification asks).
UNSUPPORTED = frozenset({"_typeFilter", "_elements", "patient", "includeAssociatedData"})
KNOWN = frozenset({"_outputFormat", "_type", "_since"}) | UNSUPPORTED


@dataclass(frozen=True)
class ExportRequest:
    level: str  # system, patient, group
    group_id: str | None
    pairs: list[tuple[str, str]]  # the kick-off's query parameters
    strict: bool


def _exportable(svc: FhirService, level: str) -> list[str]:
    """Types a level can export: stored in the resource tables (not the audit trail), and for the patient
    levels in the Patient compartment."""
    linked = {"Patient", *patient_compartment()}
    return sorted(
        name
        for name, rtype in svc.registry.types.items()
        if rtype.store is None and (level == "system" or name in linked)
    )


async def plan_export(svc: FhirService, ctx: RequestContext, request: ExportRequest) -> dict[str, Any]:
    """Check a kick-off and fix what the job will export: its parameters (stored with the job)."""
    pairs = request.pairs
    output_format = single_param(pairs, "_outputFormat")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise FhirError(
            Category.INVALID, f"_outputFormat '{output_format[:60]}' is not supported (use {NDJSON})", "value"
        )
    warnings = []
    for name in dict.fromkeys(k for k, _ in pairs if k not in KNOWN or k in UNSUPPORTED):
        message = f"The export parameter '{name[:40]}' is not supported"
        if request.strict:
            raise FhirError(Category.INVALID, message, "not-supported")
        warnings.append(f"{message}; it was ignored")
    exportable = _exportable(svc, request.level)
    asked = [t for k, v in pairs if k == "_type" for t in v.split(",") if t]
    unknown = [t for t in asked if t not in exportable]
    if unknown:
        raise FhirError(
            Category.INVALID, f"_type names types this export cannot hold: {', '.join(unknown[:5])}", "value"
        )
    searchable = svc.hooks.searchable(ctx)
    if asked:
        types = list(dict.fromkeys(asked))
    else:  # everything the caller may search
        types = [t for t in exportable if searchable is None or t in searchable]
    since_text = single_param(pairs, "_since")
    since = fhir_instant(parse_instant("_since", since_text)) if since_text else None
    if svc.hooks.before_operation:  # may the caller export at all: before anything is read for it
        await svc.hooks.run_before_operation(OperationEvent(ctx, "$export", None, tuple(types)))
    patients = await _patients(svc, ctx, request)
    return {
        "level": request.level,
        "types": types,
        "since": since,
        "transactionTime": fhir_instant(now_ms()),
        "patients": patients,
        "warnings": warnings,
    }


async def _patients(svc: FhirService, ctx: RequestContext, request: ExportRequest) -> list[str] | None:
    """The patients whose compartments a patient-level export covers: None for every patient."""
    if request.level != "group":
        return None
    assert request.group_id is not None
    group = await read_reference(svc, ctx, f"Group/{request.group_id}")
    if group is None:
        raise FhirError(Category.NOT_FOUND, f"Group/{request.group_id} is not known")
    members = []
    for member in group.get("member") or []:
        reference = ((member.get("entity") or {}).get("reference") or "").removeprefix(svc.base_url + "/")
        if member.get("inactive") is True or not reference.startswith("Patient/"):
            continue
        members.append(reference.removeprefix("Patient/"))
    return list(dict.fromkeys(members))


async def export_step(
    svc: FhirService, ctx: RequestContext, params: dict[str, Any], state: dict[str, Any], batch_size: int
) -> Step:
    """One page of the current type, as one file; the next type once a type is done."""
    types: list[str] = params["types"]
    index, cursor = int(state.get("index", 0)), state.get("cursor")
    written = int(state.get("written", 0))
    if index >= len(types):
        progress = f"exported {written} resources of {len(types)} types"
        # Parameters ignored at kick-off are told in the manifest's error file, as an OperationOutcome.
        issues = [Issue(w, "not-supported", severity="warning") for w in params["warnings"]]
        told = (
            Output("OperationOutcome", 1, orjson.dumps(operation_outcome(issues)) + b"\n") if issues else None
        )
        return Step(state, progress, told, result={})
    res_type = types[index]
    pairs = [
        ("_count", str(batch_size)),
        ("_total", "none"),
        ("_lastUpdated", f"le{params['transactionTime']}"),
    ]
    if params["since"]:
        pairs.append(("_lastUpdated", f"gt{params['since']}"))
    if cursor:
        pairs.append(("_cursor", cursor))
    patients = None if params["level"] == "system" else PatientSet(_ids(params["patients"]))
    request = SearchRequest((res_type,), pairs, res_type, strict=True, patients=patients)
    page = await search_page(svc, ctx, request)
    contents = [m.content for m in page.matches if m.content is not None]
    cursor = page.cursors.get("next")
    state = {
        "index": index if cursor else index + 1,
        "cursor": cursor,
        "written": written + len(contents),
    }
    progress = f"exported {state['written']} resources; {res_type}, type {index + 1} of {len(types)}"
    output = Output(res_type, len(contents), b"\n".join(contents) + b"\n") if contents else None
    return Step(state, progress, output)


def _ids(patients: list[str] | None) -> tuple[str, ...] | None:
    return None if patients is None else tuple(patients)


EXPORT = JobKind("export", export_step)
