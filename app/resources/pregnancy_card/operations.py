"""The card's operations, as registry data (app/fhir/operations.py builds their routes and /metadata).

- `GET /Patient/{id}/$pregnancy-card[?episode=<id>]`: the card as a FHIR document Bundle, or as
  printable HTML (`_format=html`, or a browser's `Accept: text/html`).
- `GET /$pregnancy-extract[?_since=<date>]`: finished pregnancies as de-identified NDJSON for research
  (extract_operation.py, README-extract.md).

Each reads only through the engine as the caller (gather.py), so the policy, blocks and audit apply.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from fastapi import Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.http import fhir_response, response_media_type
from app.fhir.operations import Operation, Parameter
from app.resources.pregnancy_card import card
from app.resources.pregnancy_card.extract_operation import OPERATION as EXTRACT_OPERATION
from app.resources.pregnancy_card.gather import gather
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
    EXTRACT_OPERATION,
)
