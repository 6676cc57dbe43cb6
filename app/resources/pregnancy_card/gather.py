"""What a pregnancy card shows, read through the engine as the caller.

Every read is a search in the woman's Patient compartment (or a read of a reference the card names), so
the access policy decides per resource, consent blocks and the reservation hide what they hide, and
each read is audited as pregnancy-card access (codes.PREGNANCY_CARD_SERVICE). The pregnancy's own
resources are found by the pack's `episode-of-care` parameter (search.py), indexed when they were
written; what the card shows from elsewhere comes from the other packs: medicines from the medication
list, allergies from the core journal.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.outcome import Category, FhirError
from app.resources.core_journal.codes import ENTRY_TAG
from app.resources.medication_list.operations import read_shared
from app.resources.pregnancy_card.codes import EPISODE_TYPE_CARD, EPISODE_TYPE_SNOMED, PREGNANCY_CARD_SERVICE
from app.resources.pregnancy_card.content import is_pregnancy_condition
from app.resources.pregnancy_card.search import EPISODE_PARAM

MAX_PER_KIND = 2_000  # of one kind in one pregnancy; more is a 413, never a cut card
_ACTIVE = frozenset({"active", "recurrence", "relapse"})
_UNREADABLE = frozenset({Category.NOT_FOUND, Category.GONE, Category.FORBIDDEN})
# The card's own resources, searched by the pregnancy they name (Encounter by its own element).
EPISODE_TYPES = (
    "Encounter",
    "Observation",
    "Condition",
    "ServiceRequest",
    "DiagnosticReport",
    "Procedure",
    "CarePlan",
    "Communication",
    "QuestionnaireResponse",
)


@dataclass
class CardData:
    patient: dict[str, Any]
    episode: dict[str, Any]
    # per resource type, the pregnancy's own resources (EPISODE_TYPES) and the care teams it names
    own: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    medicines: list[dict[str, Any]] = field(default_factory=list)  # the medication list's active entries
    allergies: list[dict[str, Any]] = field(default_factory=list)  # the core journal's entries
    illnesses: list[dict[str, Any]] = field(default_factory=list)  # her other active conditions

    def of(self, res_type: str) -> list[dict[str, Any]]:
        return self.own.get(res_type, [])


def card_context(ctx: RequestContext) -> RequestContext:
    return dataclasses.replace(ctx, service=PREGNANCY_CARD_SERVICE)


def choose_episode(episodes: Sequence[Mapping[str, Any]], episode_id: str | None) -> dict[str, Any]:
    """The pregnancy the card is about: the one asked for, else the active one, else the latest begun
    (a finished pregnancy's card stays readable). 404 when she has none the caller may see."""
    if episode_id is not None:
        named = [e for e in episodes if e.get("id") == episode_id]
        if not named:
            raise FhirError(
                Category.NOT_FOUND, f"EpisodeOfCare/{episode_id} is not a pregnancy of this patient"
            )
        return dict(named[0])
    if not episodes:
        raise FhirError(Category.NOT_FOUND, "No pregnancy (EpisodeOfCare of type antenatal care) is recorded")

    def key(e: dict[str, Any]) -> tuple[bool, str, str]:
        start = str(e.get("period", {}).get("start", ""))
        return (e.get("status") in ("active", "planned", "waitlist", "onhold"), start, str(e.get("id")))

    chosen: dict[str, Any] = max((dict(e) for e in episodes), key=key)
    return chosen


def _active(condition: Mapping[str, Any]) -> bool:
    codings = condition.get("clinicalStatus", {}).get("coding", [])
    return not codings or codings[0].get("code") in _ACTIVE


async def gather(
    engine: Engine, ctx: RequestContext, patient_id: str, episode_id: str | None = None
) -> CardData:
    """Reads the woman (the policy decides whether the caller may see her at all), her pregnancies, then
    everything the chosen one's card shows, side by side."""
    ctx = card_context(ctx)
    compartment = ("Patient", patient_id)
    patient = (await engine.read_resource(ctx, f"Patient/{patient_id}")) or {}
    if not patient:
        raise FhirError(Category.NOT_FOUND, f"Patient/{patient_id} is not known")
    episodes = await engine.search(
        ctx,
        "EpisodeOfCare",
        [("type", ",".join(f"{t['system']}|{t['code']}" for t in (EPISODE_TYPE_SNOMED, EPISODE_TYPE_CARD)))],
        MAX_PER_KIND,
        compartment,
    )
    episode = choose_episode(episodes, episode_id)
    reference = f"EpisodeOfCare/{episode['id']}"

    async def own(res_type: str) -> list[dict[str, Any]]:
        return await engine.search(ctx, res_type, [(EPISODE_PARAM, reference)], MAX_PER_KIND, compartment)

    async def read_all(refs: Sequence[Any]) -> list[dict[str, Any]]:
        """What the episode names (care teams, diagnoses) that the caller may read: one the policy
        refuses (audited as refused) or that is gone leaves the card, not the whole card."""
        found = []
        for ref in refs:
            try:
                resource = await engine.read_resource(
                    ctx, ref.get("reference") if isinstance(ref, dict) else None
                )
            except FhirError as error:
                if error.category not in _UNREADABLE:
                    raise
                continue
            if resource:
                found.append(resource)
        return found

    async def medicines() -> list[dict[str, Any]]:
        return (await read_shared(engine, ctx, patient_id)).statements

    async def allergies() -> list[dict[str, Any]]:
        tag = f"{ENTRY_TAG['system']}|{ENTRY_TAG['code']}"
        return await engine.search(ctx, "AllergyIntolerance", [("_tag", tag)], MAX_PER_KIND, compartment)

    async def illnesses() -> list[dict[str, Any]]:
        return await engine.search(
            ctx, "Condition", [("clinical-status", "active")], MAX_PER_KIND, compartment
        )

    results = await asyncio.gather(
        *(own(t) for t in EPISODE_TYPES),
        read_all(episode.get("team", [])),
        read_all([d.get("condition") for d in episode.get("diagnosis", []) if isinstance(d, dict)]),
        medicines(),
        allergies(),
        illnesses(),
    )
    found = dict(zip(EPISODE_TYPES, results[: len(EPISODE_TYPES)], strict=True))
    teams, diagnosed, meds, allergy_entries, active = results[len(EPISODE_TYPES) :]
    found["CareTeam"] = list(teams)
    found["Condition"] = merged(found["Condition"], diagnosed)
    at_visits = await observations_at(engine, ctx, found["Encounter"], MAX_PER_KIND, compartment)
    found["Observation"] = merged(found["Observation"], at_visits)
    own_conditions = {c["id"] for c in found["Condition"]}
    others = [c for c in active if c["id"] not in own_conditions and not is_pregnancy_condition(c)]
    return CardData(patient, episode, found, meds, allergy_entries, [c for c in others if _active(c)])


async def observations_at(
    engine: Engine,
    ctx: RequestContext,
    encounters: Sequence[Mapping[str, Any]],
    limit: int,
    compartment: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Observations recorded at the pregnancy's consultations that do not name the pregnancy themselves
    (an EPJ that sets Observation.encounter only); the card and the research extract find them alike.
    `compartment`: only the woman's own (the card's are hers; the extract reads many women at once)."""
    refs = [f"Encounter/{e['id']}" for e in encounters]
    out: list[dict[str, Any]] = []
    for start in range(0, len(refs), 100):
        chunk = ",".join(refs[start : start + 100])
        out += await engine.search(ctx, "Observation", [("encounter", chunk)], limit, compartment)
    return out


def merged(first: Sequence[dict[str, Any]], more: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`first`, then those of `more` not among them (by id), each once."""
    out = {r["id"]: r for r in first}
    for r in more:
        out.setdefault(r["id"], r)
    return list(out.values())
