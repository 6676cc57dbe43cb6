"""`GET /Task/$discharge-ready`: the discharge-ready notices and their clocks per municipality.

Reads only through the engine's search with the request's context (the access policy, the scopes and the
audit apply as for the caller's own `GET /Task?...`); the figures come from report.py / clock.py.
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import date, datetime
from enum import Enum
from typing import Annotated
from zoneinfo import ZoneInfo

import orjson
from fastapi import Query, Request, Response

from app.adapters.plo.clock import TASK_TOKEN
from app.adapters.plo.report import discharge_ready_parameters
from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.http import fhir_response, response_media_type
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError

OSLO = ZoneInfo("Europe/Oslo")
MAX_NOTICES = 20_000  # per request; beyond that the caller narrows it with `municipality`
OPERATION_TAGS: list[str | Enum] = ["PLO messages"]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _query_date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    if _ISO_DATE.fullmatch(value):
        with suppress(ValueError):
            return date.fromisoformat(value)
    raise FhirError(Category.INVALID, f"{name} must be a date (YYYY-MM-DD)", "value", (name,))


async def discharge_ready_operation(
    request: Request,
    since: Annotated[
        str | None, Query(alias="_since", description="YYYY-MM-DD: notices open at or after this day")
    ] = None,
    municipality: Annotated[
        str | None, Query(description="The municipality (Task owner), e.g. Organization/x (default: all)")
    ] = None,
    today: Annotated[str | None, Query(description="YYYY-MM-DD (default: today in Oslo)")] = None,
) -> Response:
    media = response_media_type(request)
    start = _query_date("_since", since[:10] if since else None)
    as_of = _query_date("today", today) or datetime.now(OSLO).date()
    criteria = [("code", TASK_TOKEN), *([("owner", municipality)] if municipality else [])]
    tasks = await fhir_engine(request).search(request_context(request), "Task", criteria, MAX_NOTICES)
    body = discharge_ready_parameters(tasks, as_of, start)
    return fhir_response(request, orjson.dumps(body), 200, None, media)


_TAGS = tuple(str(t) for t in OPERATION_TAGS)
OPERATIONS = (
    Operation(
        "discharge-ready",
        "type",
        "GET",
        discharge_ready_operation,
        "Discharge-ready patients per municipality: notice date, the municipality's answer, days waiting",
        types=("Task",),
        description=(
            "The PLO notices of discharge-ready patients (Task code "
            "http://helsebro.no/fhir/CodeSystem/plo-task|discharge-ready) per municipality (the Task owner), "
            "with days waiting and payable days as of `today` (see app/adapters/plo/README.md)."
        ),
        parameters=(
            Parameter(
                "_since", "in", "date", documentation="Notices open at or after this day (default: all)"
            ),
            Parameter("municipality", "in", "string", documentation="Task owner, e.g. Organization/x"),
            Parameter("today", "in", "date", documentation="Default: today in Oslo"),
            Parameter("return", "out", "Parameters", 1, "1", "Notices and figures per municipality"),
        ),
        tags=_TAGS,
    ),
)
