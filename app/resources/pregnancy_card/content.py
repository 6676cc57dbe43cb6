"""What counts as content of the pregnancy health card (the guard's question), from the pack's codes.

Card content is: the pregnancy (an EpisodeOfCare typed antenatal care or the pack's svangerskap), the
pregnancy Condition, the CarePlan instantiating the basic programme, the woman's notes and questions (a
Communication with a note category), any resource naming its pregnancy with the episode extension, and
an Encounter whose episodeOfCare is a pregnancy (which needs the referenced EpisodeOfCare: the lookup is
passed in, so everything here but that one read is pure).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from app.resources.pregnancy_card.codes import (
    CARD_SYSTEM,
    EPISODE_EXTENSION,
    EPISODE_TYPE_CARD,
    EPISODE_TYPE_SNOMED,
    NOTE_CATEGORIES,
    PREGNANCY_CONDITION,
    PROGRAMME_URL,
)

# A referenced EpisodeOfCare's current content by id (None: not found or not readable).
EpisodeLookup = Callable[[str], Awaitable[Mapping[str, Any] | None]]

_EPISODE_TYPES = {(c["system"], c["code"]) for c in (EPISODE_TYPE_SNOMED, EPISODE_TYPE_CARD)}
_PREGNANCY = (PREGNANCY_CONDITION["system"], PREGNANCY_CONDITION["code"])
_NOTES = {(CARD_SYSTEM, code) for code in NOTE_CATEGORIES}


def _codings(concepts: Any) -> set[tuple[Any, Any]]:
    """(system, code) of every coding of one CodeableConcept or a list of them."""
    found: set[tuple[Any, Any]] = set()
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, Mapping):
            for coding in concept.get("coding") or []:
                if isinstance(coding, Mapping):
                    found.add((coding.get("system"), coding.get("code")))
    return found


def is_pregnancy_episode(resource: Mapping[str, Any] | None) -> bool:
    return (
        resource is not None
        and resource.get("resourceType") == "EpisodeOfCare"
        and not _EPISODE_TYPES.isdisjoint(_codings(resource.get("type")))
    )


def is_pregnancy_condition(resource: Mapping[str, Any] | None) -> bool:
    return (
        resource is not None
        and resource.get("resourceType") == "Condition"
        and _PREGNANCY in _codings(resource.get("code"))
    )


def is_note(resource: Mapping[str, Any] | None) -> bool:
    """The woman's own note or question for the next consultation."""
    return (
        resource is not None
        and resource.get("resourceType") == "Communication"
        and not _NOTES.isdisjoint(_codings(resource.get("category")))
    )


def names_episode(resource: Mapping[str, Any]) -> bool:
    """Carries the episode extension (the card's resources that are not Encounters)."""
    extensions = resource.get("extension") or []
    return any(isinstance(e, Mapping) and e.get("url") == EPISODE_EXTENSION for e in extensions)


def is_direct_content(resource: Mapping[str, Any] | None) -> bool:
    """Card content by its own content (no lookup)."""
    if resource is None:
        return False
    res_type = resource.get("resourceType")
    if is_pregnancy_episode(resource) or is_note(resource) or names_episode(resource):
        return True
    if is_pregnancy_condition(resource):
        return True
    if res_type == "CarePlan":
        return PROGRAMME_URL in (resource.get("instantiatesCanonical") or [])
    return False


def encounter_episode_ids(resource: Mapping[str, Any] | None) -> list[str]:
    """The EpisodeOfCare ids an Encounter's episodeOfCare references literally ("EpisodeOfCare/id")."""
    if resource is None or resource.get("resourceType") != "Encounter":
        return []
    ids = []
    for ref in resource.get("episodeOfCare") or []:
        reference = ref.get("reference") if isinstance(ref, Mapping) else None
        if (
            isinstance(reference, str)
            and reference.startswith("EpisodeOfCare/")
            and reference.count("/") == 1
        ):
            ids.append(reference.removeprefix("EpisodeOfCare/"))
    return ids


async def is_card_content(resource: Mapping[str, Any] | None, episode: EpisodeLookup) -> bool:
    """Whether `resource` is content of a pregnancy card; `episode` reads an Encounter's EpisodeOfCare."""
    if is_direct_content(resource):
        return True
    for episode_id in encounter_episode_ids(resource):
        if is_pregnancy_episode(await episode(episode_id)):
            return True
    return False
