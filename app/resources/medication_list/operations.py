"""`$medication-list` and `$reconcile` on Patient (README.md, "Operations").

Both read only through the engine with the request's context (a search in the patient's compartment, so
the policy checks the patient, then the entries), and an apply is one engine transaction guarded by the
List's version, so the policy, the audit and the subscriptions apply as to any other write.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.context import RequestContext
from app.fhir.engine import Engine, entry_resource
from app.fhir.http import etag, fhir_response, operation_body, parse_etag_version, response_media_type
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError, Issue, operation_outcome
from app.resources.medication_list import guard, model, multidose
from app.resources.medication_list.codes import ChangeKind
from app.resources.medication_list.diff import Change, diff
from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM

MAX_ENTRIES = 500  # per list; more is a data anomaly, refused rather than cut
IDS_PER_SEARCH = 100
DEFAULT_REASON = "Legemiddelsamstemming"
TAGS = ("Medication list",)


@dataclass(frozen=True)
class Shared:
    """The patient's List as stored (None before the first reconciliation) and its active entries."""

    medication_list: dict[str, Any] | None
    statements: list[dict[str, Any]]

    @property
    def version(self) -> int:
        return int(self.medication_list["meta"]["versionId"]) if self.medication_list else 0


async def read_shared(engine: Engine, ctx: RequestContext, patient_id: str) -> Shared:
    found = await engine.search(
        ctx, "List", [("identifier", model.list_criteria(patient_id))], 1, ("Patient", patient_id)
    )
    medication_list = found[0] if found else None
    ids = model.entry_ids(medication_list)
    by_id: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), IDS_PER_SEARCH):
        chunk = ",".join(ids[start : start + IDS_PER_SEARCH])
        # In her compartment: the list's entries are hers, and the policy then judges them knowing so.
        criteria = [("_id", chunk)]
        found_now = await engine.search(
            ctx, "MedicationStatement", criteria, MAX_ENTRIES, ("Patient", patient_id)
        )
        by_id |= {s["id"]: s for s in found_now}
    return Shared(medication_list, [by_id[i] for i in ids if i in by_id])


def list_bundle(shared: Shared, patient_id: str, outcome: dict[str, Any] | None = None) -> dict[str, Any]:
    medication_list = shared.medication_list or model.empty_list(patient_id)
    entries = [{"resource": r} for r in (medication_list, *shared.statements)]
    if outcome is not None:
        entries.append({"resource": outcome})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


async def medication_list(res_id: str, request: Request) -> Response:
    shared = await read_shared(fhir_engine(request), request_context(request), res_id)
    body = orjson.dumps(list_bundle(shared, res_id))
    return fhir_response(request, body, 200, {"ETag": etag(shared.version)}, response_media_type(request))


# -- $reconcile -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReconcileInput:
    incoming: list[dict[str, Any]]
    apply: bool = False
    accept: frozenset[str] | None = None  # None: every change
    reason: str = DEFAULT_REASON
    source: str | None = None  # "List/{id}": a stored list of the patient's, its statements incoming too


def _statements_of_list(resource: dict[str, Any]) -> list[dict[str, Any]]:
    contained = {f"#{c.get('id')}": c for c in resource.get("contained") or [] if isinstance(c, dict)}
    items = []
    for entry in resource.get("entry") or []:
        reference = (entry.get("item") or {}).get("reference") if isinstance(entry, dict) else None
        if reference not in contained:
            raise FhirError(Category.INVALID, "Each List entry must point at a contained MedicationStatement")
        items.append(contained[reference])
    return items


def parse_input(body: Any) -> ReconcileInput:
    if isinstance(body, dict) and body.get("resourceType") == "List":
        return _checked(ReconcileInput(_statements_of_list(body)))
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError(Category.INVALID, "$reconcile takes a Parameters or a List body")
    incoming: list[dict[str, Any]] = []
    accept: set[str] | None = None
    apply, reason, source = False, DEFAULT_REASON, None
    for part in body.get("parameter") or []:
        name = part.get("name") if isinstance(part, dict) else None
        if name == "medication":
            incoming.append(part.get("resource"))
        elif name == "source" and isinstance((part.get("valueReference") or {}).get("reference"), str):
            source = part["valueReference"]["reference"]
        elif name == "list" and isinstance(part.get("resource"), dict):
            incoming += _statements_of_list(part["resource"])
        elif name == "apply" and isinstance(part.get("valueBoolean"), bool):
            apply = part["valueBoolean"]
        elif name == "accept" and isinstance(part.get("valueString"), str):
            accept = (accept or set()) | {part["valueString"]}
        elif name == "reason" and isinstance(part.get("valueString"), str) and part["valueString"].strip():
            reason = part["valueString"].strip()
        else:
            raise FhirError(Category.INVALID, f"Unknown or malformed parameter '{name}'", "value")
    return _checked(
        ReconcileInput(incoming, apply, frozenset(accept) if accept is not None else None, reason, source)
    )


def _checked(data: ReconcileInput) -> ReconcileInput:
    if len(data.incoming) > MAX_ENTRIES:
        raise FhirError(Category.TOO_LARGE, f"At most {MAX_ENTRIES} medicines per list")
    for n, item in enumerate(data.incoming):
        if not isinstance(item, dict) or item.get("resourceType") != "MedicationStatement":
            raise FhirError(Category.INVALID, f"medication {n} is not a MedicationStatement")
        if not isinstance(item.get("medicationCodeableConcept"), dict):
            raise FhirError(
                Category.UNPROCESSABLE, f"medication {n} needs a medicationCodeableConcept (coded or text)"
            )
    return data


def agent(ctx: RequestContext) -> dict[str, Any]:
    """Provenance.agent for the caller: HPR number, else organisation number, else the client id."""
    principal = ctx.principal
    hpr, orgnr = getattr(principal, "hpr", None), getattr(principal, "orgnr", None)
    if hpr:
        who: dict[str, Any] = {"identifier": {"system": HPR_SYSTEM, "value": hpr}}
    elif orgnr:
        who = {"identifier": {"system": ORGNR_SYSTEM, "value": orgnr}}
    else:
        who = {
            "display": str(getattr(principal, "client_id", None) or getattr(principal, "name", "helsebro"))
        }
    agent: dict[str, Any] = {"who": who}
    if hpr and orgnr:
        agent["onBehalfOf"] = {"identifier": {"system": ORGNR_SYSTEM, "value": orgnr}}
    return agent


def apply_bundle(
    shared: Shared,
    list_resource: dict[str, Any],
    changes: list[Change],
    proposals: list[dict[str, Any]],
    data: ReconcileInput,
    ctx: RequestContext,
    patient_id: str,
    at: datetime,
) -> dict[str, Any]:
    """The Bundle of one apply: statements (each ifMatch its version), a Provenance each, the List."""
    entries: list[dict[str, Any]] = []
    references = [f"MedicationStatement/{s['id']}" for s in shared.statements]
    who = agent(ctx)
    for n, change in enumerate(changes):
        if change.kind == ChangeKind.ADDED:
            assert change.incoming is not None
            target = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
            resource = model.new_statement(change.incoming, patient_id, at)
            entries.append(
                {
                    "fullUrl": target,
                    "resource": resource,
                    "request": {"method": "POST", "url": "MedicationStatement"},
                }
            )
            references.append(target)
            activity = "CREATE"
        else:
            assert change.shared is not None
            target = f"MedicationStatement/{change.shared['id']}"
            if change.kind == ChangeKind.STOPPED:
                resource = model.stopped_statement(change.shared, data.reason, at)
                references.remove(target)
            else:
                assert change.incoming is not None
                resource = model.changed_statement(change.shared, change.incoming, at)
            if_match = etag(int(change.shared["meta"]["versionId"]))
            entries.append(
                {"resource": resource, "request": {"method": "PUT", "url": target, "ifMatch": if_match}}
            )
            activity = "UPDATE"
        why = (
            data.reason
            if change.kind != ChangeKind.CHANGED
            else f"{data.reason} ({', '.join(change.aspects)})"
        )
        entries.append(
            {
                "resource": model.provenance(target, patient_id, activity, why, who, at),
                "request": {"method": "POST", "url": "Provenance"},
            }
        )
    entries += [{"resource": task, "request": {"method": "POST", "url": "Task"}} for task in proposals]
    list_id = list_resource["id"]
    # Only proposals (or nothing): the List is written unchanged, which checks its version and makes no
    # new one; applied changes give it a new version with the new entries.
    unchanged = {k: v for k, v in list_resource.items() if k != "meta"}
    entries.append(
        {
            "resource": model.with_entries(list_resource, references, at) if changes else unchanged,
            "request": {
                "method": "PUT",
                "url": f"List/{list_id}",
                "ifMatch": etag(int(list_resource["meta"]["versionId"])),
            },
        }
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class StaleList(Exception):
    """The caller's If-Match is not the list's version (or a concurrent apply won)."""


async def _list_to_write(
    engine: Engine, ctx: RequestContext, shared: Shared, patient_id: str, expected: int
) -> dict[str, Any]:
    """The stored List the apply writes over: created (race-safe, empty) on the first apply."""
    if shared.version != expected:
        raise StaleList
    if shared.medication_list is not None:
        return shared.medication_list
    created = await engine.create(
        ctx,
        "List",
        model.empty_list(patient_id),
        if_none_exist=f"identifier={model.list_criteria(patient_id)}",
    )
    stored: dict[str, Any] = orjson.loads(created.content)
    if created.hidden or stored["meta"]["versionId"] != "1":
        raise StaleList  # someone else started the list and has already changed it
    return stored


def _change_parts(change: Change) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "kind", "valueCode": change.kind.value},
        {"name": "key", "valueString": change.key},
        *({"name": "aspect", "valueCode": a.value} for a in change.aspects),
    ]
    if change.shared is not None:
        parts.append(
            {"name": "shared", "valueReference": {"reference": f"MedicationStatement/{change.shared['id']}"}}
        )
    if change.incoming is not None:
        parts.append({"name": "incoming", "resource": change.incoming})
    return {"name": "change", "part": parts}


async def reconcile(
    engine: Engine, ctx: RequestContext, patient_id: str, data: ReconcileInput, if_match: str | None
) -> tuple[dict[str, Any], int]:
    """The answer (a Parameters) and the list's version after it; raises StaleList for a lost race."""
    shared = await read_shared(engine, ctx, patient_id)
    if data.source is not None:
        data = replace(
            data, incoming=[*data.incoming, *await _source_statements(engine, ctx, patient_id, data.source)]
        )
        _checked(data)
    changes = diff(shared.statements, data.incoming)
    answer: list[dict[str, Any]] = [{"name": "version", "valueString": str(shared.version)}]
    answer += [_change_parts(c) for c in changes]
    if not data.apply:
        return {"resourceType": "Parameters", "parameter": answer}, shared.version
    if getattr(ctx.principal, "kind", None) == "citizen":
        raise FhirError(Category.FORBIDDEN, "The medication list is changed by health personnel", "forbidden")
    if if_match is None or if_match.strip() == "*":
        raise FhirError(
            Category.PRECONDITION, 'apply needs If-Match with the list\'s version (W/"0" before the first)'
        )
    expected = parse_etag_version(if_match, "If-Match")
    guard.operation_writes(ctx)
    wanted = [
        c for c in changes if c.kind != ChangeKind.SAME and (data.accept is None or c.key in data.accept)
    ]
    list_resource = await _list_to_write(engine, ctx, shared, patient_id, expected or 0)
    owner = multidose.responsible(list_resource)
    orgnrs = (getattr(ctx.principal, "orgnr", None), getattr(ctx.principal, "child_orgnr", None))
    applied, proposed = multidose.split(wanted, owner, orgnrs)
    at = datetime.now(UTC)
    tasks = [
        multidose.proposal_task(c, patient_id, list_resource["id"], owner, agent(ctx)["who"], data.reason, at)
        for c in proposed
        if owner is not None
    ]
    try:
        result = await engine.transaction(
            ctx, apply_bundle(shared, list_resource, applied, tasks, data, ctx, patient_id, at)
        )
    except FhirError as error:
        if error.category == Category.PRECONDITION:
            raise StaleList from error
        raise
    stored = entry_resource(result.entries[-1])
    assert stored is not None
    answer.append({"name": "applied", "valueInteger": len(applied)})
    task_entries = result.entries[-1 - len(tasks) : -1] if tasks else []
    answer += [
        {"name": "proposal", "valueReference": {"reference": "/".join((t.location or "").split("/")[:2])}}
        for t in task_entries
    ]
    answer.append({"name": "list", "resource": stored})
    return {"resourceType": "Parameters", "parameter": answer}, int(stored["meta"]["versionId"])


async def _source_statements(
    engine: Engine, ctx: RequestContext, patient_id: str, reference: str
) -> list[dict[str, Any]]:
    """The MedicationStatements of a stored List of the patient's (a snapshot another system sent, e.g.
    Reseptformidleren's PLL received as an e-resept M912), read as the caller."""
    if not reference.startswith("List/"):
        raise FhirError(Category.INVALID, "source must reference a List", "value")
    found = await engine.read_resource(ctx, reference)
    if found is None or (found.get("subject") or {}).get("reference") != f"Patient/{patient_id}":
        raise FhirError(
            Category.UNPROCESSABLE, f"{reference[:80]} is not a list of this patient's", "business-rule"
        )
    if guard.is_medication_list(found):
        raise FhirError(Category.UNPROCESSABLE, "source is the shared list itself", "business-rule")
    ids = [
        ref.removeprefix("MedicationStatement/")
        for entry in found.get("entry") or []
        if isinstance(ref := (entry.get("item") or {}).get("reference"), str)
        and ref.startswith("MedicationStatement/")
    ]
    statements: list[dict[str, Any]] = []
    for start in range(0, len(ids), IDS_PER_SEARCH):
        chunk = ",".join(ids[start : start + IDS_PER_SEARCH])
        statements += await engine.search(ctx, "MedicationStatement", [("_id", chunk)], MAX_ENTRIES)
    return statements


async def reconcile_operation(res_id: str, request: Request) -> Response:
    media = response_media_type(request)
    body = await operation_body(request)
    engine, ctx = fhir_engine(request), request_context(request)
    try:
        answer, version = await reconcile(
            engine, ctx, res_id, parse_input(body), request.headers.get("if-match")
        )
    except StaleList:
        fresh = await read_shared(engine, ctx, res_id)
        message = f"The medication list is at version {fresh.version}: reconcile against it and apply again"
        outcome = operation_outcome([Issue(message, "conflict")], "conflict")
        bundle = orjson.dumps(list_bundle(fresh, res_id, outcome))
        return fhir_response(request, bundle, 412, {"ETag": etag(fresh.version)}, media)
    return fhir_response(request, orjson.dumps(answer), 200, {"ETag": etag(version)}, media)


def _in(name: str, fhir_type: str, maximum: str = "1", documentation: str = "") -> Parameter:
    return Parameter(name, "in", fhir_type, 0, maximum, documentation)


OPERATIONS = (
    Operation(
        "medication-list",
        "instance",
        "GET",
        medication_list,
        "The patient's current medication list",
        types=("Patient",),
        description="A collection Bundle: the List (ETag its version), then its active MedicationStatements.",
        parameters=(Parameter("return", "out", "Bundle", 1, "1", "The List and its entries"),),
        tags=TAGS,
    ),
    Operation(
        "reconcile",
        "instance",
        "POST",
        reconcile_operation,
        "Reconcile a medication list against the shared list (legemiddelsamstemming)",
        types=("Patient",),
        description=(
            "The differences (added, stopped, changed dose or strength, same) between the shared list and "
            "the one given; with apply, the accepted changes are written in one transaction guarded by "
            "If-Match on the List's version (412 with the fresh list when stale)."
        ),
        parameters=(
            _in("medication", "MedicationStatement", "*", "The incoming list, one per medicine"),
            _in(
                "list",
                "List",
                documentation="Or: a List whose entries point at contained MedicationStatements",
            ),
            _in(
                "source",
                "Reference",
                documentation="Or: a stored List of the patient's (e.g. the snapshot of an e-resept M912), "
                "its MedicationStatements as the incoming list",
            ),
            _in("apply", "boolean", documentation="Write the accepted changes (needs If-Match)"),
            _in("accept", "string", "*", "The keys of the changes to apply (default: all)"),
            _in("reason", "string", documentation="Why: recorded on each Provenance and on stops"),
            Parameter(
                "return",
                "out",
                "Parameters",
                1,
                "1",
                "version, change (kind, key, aspect, shared, incoming), applied, proposal (Task), list",
            ),
        ),
        affects_state=True,
        tags=TAGS,
    ),
)
