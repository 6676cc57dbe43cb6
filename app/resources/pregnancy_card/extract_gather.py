"""What the research extract reads, through the engine as the caller (a research system client).

Every read is a search with the caller's RequestContext, so the access policy filters it and the audit
records it as the caller's search under the extract's service (EXTRACT_SERVICE). Pregnancies are read
in chunks, each chunk's resources with one search per type (`episode-of-care` names several episodes),
instead of one search per pregnancy and type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.resources.pregnancy_card.codes import EPISODE_EXTENSION, EPISODE_TYPE_CARD, EPISODE_TYPE_SNOMED
from app.resources.pregnancy_card.extract import Pregnancy, finished_since
from app.resources.pregnancy_card.gather import merged, observations_at
from app.resources.pregnancy_card.search import EPISODE_PARAM

EXTRACT_SERVICE = ("pregnancy-extract", "Forskningsuttrekk svangerskap")
MAX_EPISODES = 20_000  # finished pregnancies in one extract; more is a 413 (narrow it with _since)
CHUNK = 50  # pregnancies read together
MAX_PER_CHUNK = 50_000  # resources of one type in one chunk; more is a 413, never a cut record
# Searched by the pregnancy they name (Encounter by its own element, the rest by the extension).
EPISODE_TYPES = ("Encounter", "Observation", "Condition", "ServiceRequest", "Procedure")
# Every type the extract reads: the caller needs search scope on each.
READ_TYPES = ("EpisodeOfCare", "Patient", *EPISODE_TYPES)
_TYPE = ",".join(f"{c['system']}|{c['code']}" for c in (EPISODE_TYPE_SNOMED, EPISODE_TYPE_CARD))


def episode_refs(resource: Mapping[str, Any]) -> list[str]:
    """The pregnancies a resource names: Encounter.episodeOfCare, else the workflow-episodeOfCare extension."""
    if resource.get("resourceType") == "Encounter":
        return [str(r.get("reference")) for r in resource.get("episodeOfCare") or [] if isinstance(r, dict)]
    return [
        str(e.get("valueReference", {}).get("reference"))
        for e in resource.get("extension") or []
        if isinstance(e, dict) and e.get("url") == EPISODE_EXTENSION
    ]


def woman_id(episode: Mapping[str, Any]) -> str:
    reference = str(episode.get("patient", {}).get("reference", ""))
    return reference.removeprefix("Patient/") if reference.startswith("Patient/") else ""


async def finished_pregnancies(
    engine: Engine, ctx: RequestContext, since: date | None
) -> list[dict[str, Any]]:
    criteria = [("type", _TYPE), ("status", "finished")]
    if since is not None:
        criteria.append(("date", f"ge{since.isoformat()}"))  # narrows the read; finished_since decides
    found = await engine.search(ctx, "EpisodeOfCare", criteria, MAX_EPISODES)
    return [e for e in found if finished_since(e, since)]


async def read_chunk(
    engine: Engine, ctx: RequestContext, episodes: Sequence[Mapping[str, Any]]
) -> list[Pregnancy]:
    """The women and the resources of up to CHUNK pregnancies; a pregnancy whose woman the caller may
    not read is left out (the policy's answer, audited as such)."""
    refs = ",".join(f"EpisodeOfCare/{e['id']}" for e in episodes)
    patient_ids = sorted({woman_id(e) for e in episodes} - {""})
    if not patient_ids:
        return []

    async def of_type(res_type: str) -> list[dict[str, Any]]:
        return await engine.search(ctx, res_type, [(EPISODE_PARAM, refs)], MAX_PER_CHUNK)

    patients, *found = await asyncio.gather(
        engine.search(ctx, "Patient", [("_id", ",".join(patient_ids))], MAX_PER_CHUNK),
        *(of_type(t) for t in EPISODE_TYPES),
    )
    by_type = dict(zip(EPISODE_TYPES, found, strict=True))
    by_type["Observation"] = merged(
        by_type["Observation"], await observations_at(engine, ctx, by_type["Encounter"], MAX_PER_CHUNK)
    )
    women = {p["id"]: p for p in patients}
    out = []
    for episode in episodes:
        woman = women.get(woman_id(episode))
        if woman is None:
            continue
        ref = f"EpisodeOfCare/{episode['id']}"
        encounters = {f"Encounter/{e['id']}" for e in by_type["Encounter"] if ref in episode_refs(e)}
        own = {
            res_type: [
                r
                for r in resources
                if ref in episode_refs(r) or r.get("encounter", {}).get("reference") in encounters
            ]
            for res_type, resources in by_type.items()
        }
        out.append(Pregnancy(woman, episode, own))
    return out
