"""Read operations on referrals: the citizen's list of their referrals, and assessment waiting-time figures.

Both read only through the engine's search (the same code `GET /{type}?...` runs) with the request's
context, so the access policy, the scopes and the audit apply exactly as for the caller's own searches.
The figures and statuses come from the pure functions of patient_view.py and waiting_times.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import date, datetime
from typing import Annotated, Any

import orjson
from fastapi import Query, Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.http import fhir_response, response_media_type
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError
from app.fhir.search.extract import split_reference
from app.fhir.validate import check_id
from app.resources.referrals.codes import REFERRAL_CATEGORY, Output
from app.resources.referrals.operations import OPERATION_TAGS, is_referral_task
from app.resources.referrals.patient_view import patient_status
from app.resources.referrals.taskjson import (
    OSLO,
    first_received_date,
    output,
    output_date,
    parse_datetime,
    reference_key,
)
from app.resources.referrals.waiting_times import WaitingTimes, waiting_times_by_organisation

MAX_REFERRALS = 1_000  # per patient; more is a data anomaly, and a refusal beats a silently cut list
MAX_TASKS = 20_000  # per waiting-time request; beyond that the caller narrows it with `owner`
REFS_PER_SEARCH = 100  # ids or references per search: keeps the URL and the SQL IN list small
REFERRAL_CATEGORY_TOKEN = f"{REFERRAL_CATEGORY['system']}|{REFERRAL_CATEGORY['code']}"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FIGURES = (  # WaitingTimes field -> (parameter name, value type)
    ("received", "received", "Integer"),
    ("assessed", "assessed", "Integer"),
    ("pending", "pending", "Integer"),
    ("overdue", "overdue", "Integer"),
    ("assessed_late", "assessedLate", "Integer"),
    ("median_days", "medianDays", "Decimal"),
    ("median_working_days", "medianWorkingDays", "Decimal"),
    ("share_in_time", "shareInTime", "Decimal"),
)


def _chunks(values: list[str]) -> Iterable[list[str]]:
    return (values[i : i + REFS_PER_SEARCH] for i in range(0, len(values), REFS_PER_SEARCH))


def _target_id(reference: Any, res_type: str) -> str | None:
    """The id of a literal reference to `res_type` (relative, absolute or versioned), else None."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    target_type, target_id, _ = split_reference(reference["reference"])
    return target_id if target_type == res_type else None


def _newest(resources: list[dict[str, Any]], when: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Newest first by the instant `when(resource)` gives; resources without one go last, in search order."""
    dated: list[tuple[datetime, dict[str, Any]]] = []
    undated: list[dict[str, Any]] = []
    for resource in resources:
        moment = parse_datetime(when(resource))
        if moment is None:
            undated.append(resource)
        else:
            dated.append((moment, resource))
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return [r for _, r in dated] + undated


# -- the citizen's referrals ------------------------------------------------------------------------------
async def referral_views(engine: Engine, ctx: RequestContext, patient_id: str) -> dict[str, Any]:
    """Parameters with one `referral` per referral of the patient: three searches (ServiceRequests in the
    patient's compartment, their Tasks, the Tasks' Appointments), chunked when there are many."""
    requests = await engine.search(
        ctx,
        "ServiceRequest",
        [("subject", f"Patient/{patient_id}"), ("category", REFERRAL_CATEGORY_TOKEN)],
        MAX_REFERRALS,
        # a compartment search: the policy then checks the patient itself (a citizen asking about
        # someone else gets 403, as in GET Patient/{id}/ServiceRequest), not only which rows it may see
        ("Patient", patient_id),
    )
    tasks: dict[str, dict[str, Any]] = {}  # ServiceRequest id -> its latest Task
    for chunk in _chunks([r["id"] for r in requests]):
        focus = ",".join(f"ServiceRequest/{i}" for i in chunk)
        found = await engine.search(ctx, "Task", [("focus", focus)], MAX_REFERRALS)
        # a referral normally has one Task; should there be more, the most recently written one counts
        for task in _newest(found, lambda t: t.get("meta", {}).get("lastUpdated")):
            if (sr_id := _target_id(task.get("focus"), "ServiceRequest")) is not None:
                tasks.setdefault(sr_id, task)
    wanted = {a for t in tasks.values() if (a := _target_id(output(t, Output.APPOINTMENT), "Appointment"))}
    appointments: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(wanted)):
        found = await engine.search(ctx, "Appointment", [("_id", ",".join(chunk))], MAX_REFERRALS)
        appointments.update((a["id"], a) for a in found)
    parameters = []
    for sr in _newest(requests, lambda r: r.get("authoredOn")):
        current = tasks.get(sr["id"])
        booked = _target_id(output(current, Output.APPOINTMENT), "Appointment") if current else None
        view = patient_status(sr, current, appointments.get(booked or "")).to_dict()
        parameters.append({"name": "referral", "part": _referral_parts(sr, current, view)})
    return {"resourceType": "Parameters", "parameter": parameters}


def _language_parts(name: str, nb: str | None, en: str | None) -> list[dict[str, Any]]:
    parts = [{"name": lang, "valueString": text} for lang, text in (("nb", nb), ("en", en)) if text]
    return [{"name": name, "part": parts}] if parts else []


def _referral_parts(sr: dict[str, Any], task: dict[str, Any] | None, view: dict[str, Any]) -> list[Any]:
    """Only what patient_status produced (coded and dated facts) plus the two references: no Task
    content is copied here, so internal notes cannot leak."""
    parts: list[dict[str, Any]] = [
        {"name": "serviceRequest", "valueReference": {"reference": f"ServiceRequest/{sr['id']}"}}
    ]
    if task is not None:
        parts.append({"name": "task", "valueReference": {"reference": f"Task/{task['id']}"}})
    parts.append({"name": "state", "valueCode": view["state"]})
    parts += _language_parts("text", view["text"]["nb"], view["text"]["en"])
    if "organisation" in view:
        parts.append({"name": "organisation", "valueString": view["organisation"]})
    for name, value in view.get("dates", {}).items():
        parts.append({"name": name, "valueDateTime" if name == "appointment" else "valueDate": value})
    parts += _language_parts("reason", view.get("reason_nb"), view.get("reason_en"))
    return parts


async def own_referrals(request: Request) -> Response:
    media = response_media_type(request)
    ctx = request_context(request)
    # The SMART launch context (the `patient` claim) names the patient; a fødselsnummer alone could
    # match several Patient records, and a proxy's token covers more than one person.
    patient_id = getattr(ctx.principal, "launch_patient", None)
    if not patient_id:
        raise FhirError(
            Category.INVALID,
            "The token has no patient context; use GET /Patient/{id}/$referrals",
            "required",
        )
    check_id(str(patient_id))  # it comes from a token, not from a path the router has checked
    body = await referral_views(fhir_engine(request), ctx, str(patient_id))
    return fhir_response(request, orjson.dumps(body), 200, None, media)


async def patient_referrals(res_id: str, request: Request) -> Response:
    media = response_media_type(request)
    body = await referral_views(fhir_engine(request), request_context(request), res_id)
    return fhir_response(request, orjson.dumps(body), 200, None, media)


# -- waiting times --------------------------------------------------------------------------------------
def _query_date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    if _ISO_DATE.fullmatch(value):  # fromisoformat alone would also take 20250301
        with suppress(ValueError):
            return date.fromisoformat(value)
    raise FhirError(Category.INVALID, f"{name} must be a date (YYYY-MM-DD)", "value", (name,))


def waiting_time_parameters(
    tasks: Iterable[dict[str, Any]], today: date, received_from: date | None, received_to: date | None
) -> dict[str, Any]:
    """The figures per owner organisation, as of `today`: a receipt after `today` is left out and an
    assessment after it counts as pending, so a past `today` gives the figures as they stood then."""
    entries: list[tuple[str, date, date | None]] = []
    owners: dict[str, dict[str, Any]] = {}
    for task in tasks:
        # counted from the receipt the Task's assessment deadline (innen-vurderingsfrist) counts from
        received = first_received_date(task)
        key = reference_key(task.get("owner"))
        if received is None or key is None or received > today:
            continue  # never received (a receipt always sets the owner), or not yet as of `today`
        if (received_from and received < received_from) or (received_to and received > received_to):
            continue
        assessed = output_date(task, Output.ASSESSED)
        if assessed is not None and assessed < received:  # checked here so the 422 can name the Task
            raise FhirError(
                Category.UNPROCESSABLE, f"Task/{task.get('id')}: its assessment is dated before its receipt"
            )
        entries.append((key, received, assessed if assessed is not None and assessed <= today else None))
        owner = task["owner"]
        if key not in owners or ("display" in owner and "display" not in owners[key]):
            owners[key] = {k: owner[k] for k in ("reference", "identifier", "display") if k in owner}
    parameters: list[dict[str, Any]] = [{"name": "today", "valueDate": today.isoformat()}]
    for key, figures in waiting_times_by_organisation(entries, today).items():
        parameters.append({"name": "organization", "part": _figure_parts(owners[key], figures)})
    return {"resourceType": "Parameters", "parameter": parameters}


def _figure_parts(owner: dict[str, Any], figures: WaitingTimes) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"name": "organization", "valueReference": owner}]
    for field_name, name, kind in _FIGURES:
        value = getattr(figures, field_name)
        if value is not None:
            parts.append({"name": name, f"value{kind}": value})
    return parts


async def waiting_times_operation(
    request: Request,
    owner: Annotated[str | None, Query(description="Task owner, e.g. Organization/x (default: all)")] = None,
    received_from: Annotated[str | None, Query(alias="received-from", description="YYYY-MM-DD")] = None,
    received_to: Annotated[str | None, Query(alias="received-to", description="YYYY-MM-DD")] = None,
    today: Annotated[str | None, Query(description="YYYY-MM-DD (default: today in Oslo)")] = None,
) -> Response:
    media = response_media_type(request)
    start, end = _query_date("received-from", received_from), _query_date("received-to", received_to)
    as_of = _query_date("today", today) or datetime.now(OSLO).date()
    if start and end and end < start:
        raise FhirError(Category.INVALID, "received-to is before received-from", "value", ("received-to",))
    # Every referral Task has a focus, so the search asks for Tasks with one; is_referral_task keeps the
    # referral Tasks (by code or profile), and the receipt dates (in Task.output, not indexed) are
    # filtered here too.
    criteria = [("focus:missing", "false"), *([("owner", owner)] if owner else [])]
    tasks = await fhir_engine(request).search(request_context(request), "Task", criteria, MAX_TASKS)
    body = waiting_time_parameters(filter(is_referral_task, tasks), as_of, start, end)
    return fhir_response(request, orjson.dumps(body), 200, None, media)


_TAGS = tuple(str(t) for t in OPERATION_TAGS)
_VIEWS = Parameter("return", "out", "Parameters", 1, "1", "The referrals as the patient sees them")
OPERATIONS = (
    Operation(
        "referrals",
        "type",
        "GET",
        own_referrals,
        "The referrals of the token's patient",
        types=("Patient",),
        description="For a citizen's token with a patient context (the SMART `patient` claim).",
        parameters=(_VIEWS,),
        tags=_TAGS,
    ),
    Operation(
        "referrals",
        "instance",
        "GET",
        patient_referrals,
        "A patient's referrals",
        types=("Patient",),
        parameters=(_VIEWS,),
        tags=_TAGS,
    ),
    Operation(
        "waiting-times",
        "type",
        "GET",
        waiting_times_operation,
        "Assessment waiting times per organisation",
        types=("Task",),
        parameters=(
            Parameter(
                "owner", "in", "string", documentation="Task owner, e.g. Organization/x (default: all)"
            ),
            Parameter("received-from", "in", "date"),
            Parameter("received-to", "in", "date"),
            Parameter("today", "in", "date", documentation="Default: today in Oslo"),
            Parameter("return", "out", "Parameters", 1, "1", "Figures per organisation"),
        ),
        tags=_TAGS,
    ),
)
