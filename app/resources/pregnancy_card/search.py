"""The pack's search parameter, as data: `episode-of-care`, the pregnancy a resource of the card belongs to.

R4 gives only Encounter an `episodeOfCare`; every other resource of the card names its pregnancy with the
R5 backport extension workflow-episodeOfCare (codes.EPISODE_EXTENSION). Indexing that extension at write
time lets the card find a pregnancy's Observations, tests, plan and notes with one indexed search
(`Observation?episode-of-care=EpisodeOfCare/123`) instead of reading the woman's whole record and
filtering it.
"""

from __future__ import annotations

from app.fhir.registry import Registry, SearchParam
from app.resources.pregnancy_card.codes import BASE, EPISODE_EXTENSION

EPISODE_PARAM = "episode-of-care"
EPISODE_PARAM_URL = f"{BASE}/SearchParameter/pregnancy-episode-of-care"

# The types the card holds besides Encounter (which has its own `episode-of-care` parameter in R4).
EXTENSION_BASES = (
    "CarePlan",
    "CareTeam",
    "Communication",
    "Condition",
    "DiagnosticReport",
    "Observation",
    "Procedure",
    "QuestionnaireResponse",
    "ServiceRequest",
)


def pack_search_parameter() -> SearchParam:
    return SearchParam(
        code=EPISODE_PARAM,
        type="reference",
        expression=" | ".join(
            f"{base}.extension.where(url='{EPISODE_EXTENSION}').value" for base in EXTENSION_BASES
        ),
        url=EPISODE_PARAM_URL,
        documentation="The EpisodeOfCare (the pregnancy) the resource belongs to: the "
        "workflow-episodeOfCare extension",
        targets=("EpisodeOfCare",),
    )


def install(registry: Registry) -> None:
    """Register the parameter on each type (idempotent: keyed by code). Before /metadata is built."""
    param = pack_search_parameter()
    for base in EXTENSION_BASES:
        registry.add_search_param(base, param)
