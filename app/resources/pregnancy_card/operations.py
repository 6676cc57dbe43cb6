"""The card's operations, as registry data (app/fhir/operations.py builds their routes and /metadata).

- `GET /Patient/{id}/$pregnancy-card[?episode=<id>]`: the card as a FHIR document Bundle, or as
  printable HTML (`_format=html`, or a browser's `Accept: text/html`).
- `GET /CarePlan/{id}/$next[?date=YYYY-MM-DD]`: what of the woman's plan is due, what is overdue and which
  consultation comes next (a Parameters resource); the pregnancy's finished consultations count as held.
- `GET /$pregnancy-extract[?_since=<date>]`: finished pregnancies as de-identified NDJSON for research
  (extract_operation.py, README.md).

Each reads only through the engine as the caller (gather.py), so the policy, blocks and audit apply.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
from fastapi import Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.http import fhir_response, response_media_type
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError
from app.resources.pregnancy_card import card, dates
from app.resources.pregnancy_card.extract_operation import OPERATION as EXTRACT_OPERATION
from app.resources.pregnancy_card.flow import episode_of
from app.resources.pregnancy_card.gather import MAX_PER_KIND, card_context, gather
from app.resources.pregnancy_card.programme import (
    NextResult,
    Scheduled,
    due_date_of,
    held_by_orders,
    next_consultations,
)
from app.resources.pregnancy_card.render import render_html

TAGS = ("Pregnancy card",)
HTML = "text/html"


def wants_html(request: Request) -> bool:
    """`_format=html` (or text/html), or an Accept that puts HTML first (a browser's)."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        return fmt.split(";")[0].strip() in ("html", HTML)
    accept = request.headers.get("accept", "")
    return accept.split(",")[0].split(";")[0].strip() == HTML


async def pregnancy_card_operation(res_id: str, request: Request) -> Response:
    html = wants_html(request)
    media = None if html else response_media_type(request)  # a 406 before anything is read
    episode = request.query_params.get("episode")
    data = await gather(fhir_engine(request), request_context(request), res_id, episode)
    document = card.document(data, request_context(request).base_url, str(uuid.uuid4()), datetime.now(UTC))
    if html:
        return Response(render_html(document), media_type=f"{HTML}; charset=utf-8")
    return fhir_response(request, orjson.dumps(document), 200, None, media)


def _day(request: Request) -> date:
    text = request.query_params.get("date")
    if text is None:
        return dates.local_date(datetime.now(UTC))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FhirError(Category.INVALID, f"date must be a date (YYYY-MM-DD), not {text[:40]!r}") from None


def _item(name: str, item: Scheduled) -> dict[str, Any]:
    parts = [
        {"name": "activity", "valueString": item.key},
        {"name": "title", "valueString": item.title},
        {"name": "start", "valueDate": item.start.isoformat()},
        {"name": "end", "valueDate": item.end.isoformat()},
        {"name": "extra", "valueBoolean": item.extra},
        # The plan's own status (not-started, scheduled, ...): whether it is booked, for a client to say.
        {"name": "status", "valueCode": item.status},
    ]
    return {"name": name, "part": parts}


def next_parameters(result: NextResult, today: date, due: date | None) -> dict[str, Any]:
    """The answer of $next (pure): today, the due date, then due, overdue and upcoming activities."""
    parameters: list[dict[str, Any]] = [{"name": "today", "valueDate": today.isoformat()}]
    if due is not None:
        parameters.append({"name": "dueDate", "valueDate": due.isoformat()})
    parameters += [_item("due", item) for item in result.due]
    parameters += [_item("overdue", item) for item in result.overdue]
    if result.upcoming is not None:
        parameters.append(_item("upcoming", result.upcoming))
    return {"resourceType": "Parameters", "parameter": parameters}


async def next_operation(res_id: str, request: Request) -> Response:
    media = response_media_type(request)
    today = _day(request)
    engine, ctx = fhir_engine(request), card_context(request_context(request))
    plan = await engine.read_resource(ctx, f"CarePlan/{res_id}") or {}
    done: list[str | date] = []
    episode = episode_of(plan)
    subject = str(plan.get("subject", {}).get("reference", ""))
    if episode is not None and subject.startswith("Patient/"):
        # Held: a finished consultation (Encounter) in a window, or a completed ultrasound order.
        compartment = ("Patient", subject.split("/", 1)[1])
        of_episode = ("episode-of-care", f"EpisodeOfCare/{episode}")
        encounters, orders = await asyncio.gather(
            engine.search(ctx, "Encounter", [of_episode, ("status", "finished")], MAX_PER_KIND, compartment),
            engine.search(
                ctx, "ServiceRequest", [of_episode, ("status", "completed")], MAX_PER_KIND, compartment
            ),
        )
        done += [
            date.fromisoformat(str(e["period"]["start"])[:10])
            for e in encounters
            if e.get("period", {}).get("start")
        ]
        done += held_by_orders(orders)
    result = next_consultations(plan, today, done)
    body = next_parameters(result, today, due_date_of(plan))
    return fhir_response(request, orjson.dumps(body), 200, None, media)


OPERATIONS = (
    Operation(
        "pregnancy-card",
        "instance",
        "GET",
        pregnancy_card_operation,
        "The pregnancy health card (helsekort for gravide) as a FHIR document",
        types=("Patient",),
        description=(
            "A FHIR document Bundle (Composition + entries) with the sections of the paper card: the "
            "pregnancy and who follows her up, due date and gestational age, history and risk, "
            "illnesses, medicines (the medication list) and allergies (the core journal), tests and "
            "examinations, the consultations, the plan (the basic programme) and the woman's notes and "
            "questions. The same document for the midwife, the GP, the hospital and the woman; the "
            "access policy, consent blocks and audit apply. `_format=html` gives a printable rendering "
            "of the same document."
        ),
        parameters=(
            Parameter(
                "episode",
                "in",
                "string",
                0,
                "1",
                "The pregnancy (EpisodeOfCare id); default: the active one, else the latest",
            ),
            Parameter("return", "out", "Bundle", 1, "1", "The card as a document Bundle"),
        ),
        tags=TAGS,
    ),
    Operation(
        "next",
        "instance",
        "GET",
        next_operation,
        "What of a pregnancy's plan is due, overdue and next",
        types=("CarePlan",),
        description=(
            "For the woman's CarePlan (the basic programme of antenatal care, with any extra follow-up): "
            "the activities whose window is open and not yet held (due), those whose window has ended "
            "(overdue) and the next one to come (upcoming). A consultation counts as held when its "
            "activity is completed or a finished Encounter of the pregnancy took place in its window; an "
            "ultrasound also when its order (a ServiceRequest of the pregnancy with its code) is completed. "
            "The overdue check (41+2–41+4) counts only past the due date. Each activity carries its "
            "status in the plan (not-started, scheduled, ...): whether it is booked."
        ),
        parameters=(
            Parameter("date", "in", "date", 0, "1", "The day to answer for; default: today in Norway"),
            Parameter("today", "out", "date", 1, "1", "The day answered for"),
            Parameter("dueDate", "out", "date", 0, "1", "The due date the plan was built from"),
            Parameter(
                "due", "out", None, 0, "*", "An activity due now (activity, title, start, end, extra, status)"
            ),
            Parameter("overdue", "out", None, 0, "*", "An activity whose window has passed, not held"),
            Parameter("upcoming", "out", None, 0, "1", "The next activity to come"),
        ),
        tags=TAGS,
    ),
    EXTRACT_OPERATION,
)
