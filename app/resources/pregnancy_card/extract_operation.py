"""`GET /$pregnancy-extract[?_since=YYYY-MM-DD]`: finished pregnancies as de-identified NDJSON for research.

System level, like `$export`: it reads across every woman and several types, and what it returns is no
EpisodeOfCare but one research record per pregnancy (extract.py). Only a system client granted the
research scope (RESEARCH_SCOPE) and search scope on every type read may run it; anyone else gets 403,
audited through the security layer's sink that main.py hands over (ExtractConfig.audit_denied), as the
card's write guard is. Without PSEUDONYM_KEY the extract refuses to run (503): a default key would be
known, and with it the pseudonym of every fødselsnummer could be computed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

import orjson
from fastapi import Request, Response

from app.fhir.api import context as request_context
from app.fhir.api import fhir_engine
from app.fhir.interactions.export import NDJSON
from app.fhir.operations import Operation, Parameter
from app.fhir.outcome import Category, FhirError
from app.resources.pregnancy_card.extract import day_of, record
from app.resources.pregnancy_card.extract_gather import (
    CHUNK,
    EXTRACT_SERVICE,
    READ_TYPES,
    finished_pregnancies,
    read_chunk,
)
from app.resources.pregnancy_card.guard import DeniedAudit
from app.resources.pregnancy_card.pseudonym import MIN_KEY_BYTES
from app.security.principal import Principal

# A scope of our own (like helsebro/identity.admin): `system/*.rs` never implies it.
RESEARCH_SCOPE = "helsebro/research.pregnancy"
INTERACTION = "$pregnancy-extract"


@dataclass(frozen=True)
class ExtractConfig:
    key: bytes = b""  # PSEUDONYM_KEY; never logged, never in a response
    audit_denied: DeniedAudit | None = None


def refusal(principal: object) -> str | None:
    """Why the caller may not run the extract, or None when it may."""
    if not isinstance(principal, Principal) or principal.kind != "system":
        return "the research extract is for system clients only"
    if RESEARCH_SCOPE not in principal.scopes.raw:
        return f"the research extract needs the scope {RESEARCH_SCOPE}"
    missing = [t for t in READ_TYPES if not principal.scopes.allows(t, "s")]
    if missing:
        return f"the research extract needs search scope on {', '.join(missing)}"
    return None


def parse_since(text: str | None) -> date | None:
    if text is None:
        return None
    day = day_of(text)
    if day is None:
        raise FhirError(Category.INVALID, "_since must be a date (YYYY-MM-DD) or a dateTime")
    return day


async def pregnancy_extract_operation(request: Request) -> Response:
    config: ExtractConfig = request.app.state.pregnancy_extract
    ctx = dataclasses.replace(request_context(request), service=EXTRACT_SERVICE)
    why = refusal(ctx.principal)
    if why is not None:
        if config.audit_denied is not None:
            await config.audit_denied(ctx, INTERACTION, (), f"pregnancy extract: {why}")
        raise FhirError(Category.FORBIDDEN, why, "forbidden")
    if len(config.key) < MIN_KEY_BYTES:
        raise FhirError(
            Category.BUSY, f"The research extract is not configured (PSEUDONYM_KEY, {MIN_KEY_BYTES}+ bytes)"
        )
    since = parse_since(request.query_params.get("_since"))
    engine = fhir_engine(request)
    episodes = await finished_pregnancies(engine, ctx, since)
    records = []
    for start in range(0, len(episodes), CHUNK):
        for pregnancy in await read_chunk(engine, ctx, episodes[start : start + CHUNK]):
            records.append(record(config.key, pregnancy))
    # Ordered by pseudonym: an order of the source (ids, end dates) would say more than the records do.
    records.sort(key=lambda r: (r["woman"], r["pregnancy"]))
    return Response(b"".join(orjson.dumps(r) + b"\n" for r in records), 200, media_type=NDJSON)


OPERATION = Operation(
    "pregnancy-extract",
    "system",
    "GET",
    pregnancy_extract_operation,
    "Finished pregnancies as de-identified NDJSON for research",
    description=(
        "One JSON record per finished pregnancy (EpisodeOfCare of type antenatal care, status finished), "
        "without direct identifiers: a keyed pseudonym of the woman and of the pregnancy, her age at the "
        "due date, the due date as year and month, and every event as gestational age relative to the "
        "due date in force; coded values only, no free text, names, identifiers, addresses or references "
        "(app/resources/pregnancy_card/README.md). For system clients with the scope "
        f"{RESEARCH_SCOPE} and search scope on {', '.join(READ_TYPES)}; every read is audited. "
        "503 when PSEUDONYM_KEY is not set."
    ),
    parameters=(
        Parameter("_since", "in", "date", 0, "1", "Only pregnancies that ended on or after this day"),
        Parameter("return", "out", "Binary", 1, "1", "application/fhir+ndjson: one record per line"),
    ),
    tags=("Pregnancy card",),
    route_options={
        "response_class": Response,
        "responses": {200: {"content": {NDJSON: {}}, "description": "One research record per line"}},
    },
)
