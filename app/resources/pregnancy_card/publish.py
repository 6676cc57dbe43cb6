"""The basic programme published as a stored PlanDefinition, so the canonical URL every woman's CarePlan
names (`instantiatesCanonical`) resolves on this server: `GET PlanDefinition/basisprogram-svangerskap`, or
`PlanDefinition?url=…`.

The programme is data of this release (programme.json); at start-up the server writes it through the engine
when the stored one is missing or differs, and leaves it alone otherwise (no new version per restart). Two
processes starting together may both find it missing: the second write then fails its version check and
finds the first's done.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.outcome import Category, FhirError
from app.resources.pregnancy_card.programme import PLAN_DEFINITION_ID, plan_definition

log = logging.getLogger(__name__)
PUBLISHER = SystemPrincipal(
    "pregnancy-card-programme", "publishes the antenatal basic programme as a PlanDefinition"
)
_RACED = frozenset({Category.CONFLICT, Category.PRECONDITION})


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


async def publish_programme(engine: Engine) -> bool:
    """Store the programme's PlanDefinition if the stored one is missing or not this release's; True when
    it wrote a version."""
    ctx = RequestContext(engine.svc.base_url, PUBLISHER, request_id="pregnancy-card-programme")
    wanted = plan_definition()
    version: int | None = None
    try:
        current = await engine.read(ctx, "PlanDefinition", PLAN_DEFINITION_ID)
    except FhirError as error:
        if error.category not in (Category.NOT_FOUND, Category.GONE):
            raise
    else:
        assert current.content is not None
        if _without_meta(orjson.loads(current.content)) == wanted:
            return False
        version = current.version
    try:
        await engine.update(ctx, "PlanDefinition", PLAN_DEFINITION_ID, wanted, if_match=version)
    except FhirError as error:
        if error.category not in _RACED:
            raise
        log.info("the programme's PlanDefinition was published by another process meanwhile")
        return False
    return True
