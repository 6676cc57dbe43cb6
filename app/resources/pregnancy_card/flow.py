"""The pregnancy's dating and plan, kept by the pack: whoever records the dating, the card follows.

A write hook at Stage.DERIVE: when an Observation that dates a pregnancy (last menstrual period, cycle
length, the ultrasound's due date) is written or deleted, or a pregnancy EpisodeOfCare is written, the
pregnancy is refreshed at the end of the write's unit of work (a transaction may record LMP and cycle
length together; the pregnancy is dated once, from both):

- the due date by LMP (Naegele, dates.py) and the due date in force (the ultrasound's once there is one)
  are recorded as Observations (11779-6, 11778-8) naming what they were derived from;
- the woman's CarePlan for the basic programme (programme.py) is built, or rebuilt when the due date moves
  (held consultations and extra follow-up are kept).

Everything goes through the engine with the pack's SystemPrincipal in the write's own unit of work, so the
derived resources are committed with the write or not at all, and pass the same hooks and audit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.context import RequestContext
from app.fhir.engine import Engine
from app.fhir.hooks import Stage, WriteEvent
from app.resources.pregnancy_card import programme
from app.resources.pregnancy_card.codes import BASE, EPISODE_EXTENSION, PROGRAMME_URL, clinical
from app.resources.pregnancy_card.content import is_pregnancy_episode
from app.resources.pregnancy_card.dates import DatingMethod
from app.resources.pregnancy_card.dating import Dating, dating, latest, observation_key
from app.resources.pregnancy_card.guard import PREGNANCY_CARD
from app.resources.pregnancy_card.search import EPISODE_PARAM
from app.store.repository import at_unit_end

# The identifier of each resource the pack derives: one per pregnancy and kind, so a refresh finds it.
DERIVED_SYSTEM = f"{BASE}/NamingSystem/pregnancy-card-derived"
TRIGGERS = frozenset({"lmp", "cycle_length", "edd_ultrasound"})
MAX_OBSERVATIONS = 5_000  # of one pregnancy; more is a data anomaly (413)
_UNIT_KEY = "pregnancy-card-dating"
Resource = dict[str, Any]


def episode_of(resource: Mapping[str, Any] | None) -> str | None:
    """The EpisodeOfCare id a resource names with the episode extension."""
    for extension in (resource or {}).get("extension", []):
        if extension.get("url") == EPISODE_EXTENSION:
            reference = str(extension.get("valueReference", {}).get("reference", ""))
            if reference.startswith("EpisodeOfCare/"):
                return reference.split("/", 1)[1]
    return None


def dating_episode(res_type: str, res_id: str, resource: Mapping[str, Any] | None) -> str | None:
    """The pregnancy a write changes the dating of (None: it changes none)."""
    if resource is None:
        return None
    if res_type == "EpisodeOfCare":
        return res_id if is_pregnancy_episode({**resource, "resourceType": "EpisodeOfCare"}) else None
    if res_type == "Observation" and observation_key(resource) in TRIGGERS:
        return episode_of(resource)
    return None


def derived_observation(
    key: str, episode: Mapping[str, Any], value: date, sources: Sequence[Mapping[str, Any]], method: str
) -> Resource:
    """A due date the pack computed, naming the Observations it came from (pure)."""
    entry = clinical(key)
    effective = max((str(s.get("effectiveDateTime", "")) for s in sources), default="")
    resource: Resource = {
        "resourceType": "Observation",
        "extension": [
            {"url": EPISODE_EXTENSION, "valueReference": {"reference": f"EpisodeOfCare/{episode['id']}"}}
        ],
        "identifier": [{"system": DERIVED_SYSTEM, "value": f"{episode['id']}-{key}"}],
        "status": "final",
        "code": entry.concept(),
        "subject": dict(episode["patient"]),
        "valueDateTime": value.isoformat(),
        "method": {"text": method},
    }
    if sources:  # (FHIR JSON has no empty arrays)
        resource["derivedFrom"] = [{"reference": f"Observation/{s['id']}"} for s in sources]
    if effective:
        resource["effectiveDateTime"] = effective
    return resource


def wanted(
    episode: Mapping[str, Any], observations: Sequence[Mapping[str, Any]]
) -> dict[str, Resource | None]:
    """The derived due-date Observations the pregnancy should have now (None: none of that kind)."""
    dated: Dating = dating(observations)
    lmp_sources = [o for o in (latest(observations, "lmp"), latest(observations, "cycle_length")) if o]
    us_source = latest(observations, "edd_ultrasound")
    by_lmp = (
        derived_observation(
            "edd_lmp", episode, dated.by_lmp, lmp_sources, "Naegeles regel (siste menstruasjon)"
        )
        if dated.by_lmp and dated.lmp
        else None
    )
    in_force: Resource | None = None
    if dated.due is not None:
        from_ultrasound = dated.method is DatingMethod.ULTRASOUND
        stated = latest(observations, "edd_lmp")  # a due date by LMP recorded without the LMP itself
        sources = (
            [us_source] if from_ultrasound and us_source else lmp_sources or ([stated] if stated else [])
        )
        method = "Termin fastsatt ved ultralyd" if from_ultrasound else "Termin etter siste menstruasjon"
        in_force = derived_observation("edd", episode, dated.due, sources, method)
    return {"edd_lmp": by_lmp, "edd": in_force}


def _same(stored: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    kept = ("meta", "id", "text")
    return {k: v for k, v in stored.items() if k not in kept} == {
        k: v for k, v in new.items() if k not in kept
    }


@dataclass(frozen=True)
class _Pending:
    ctx: RequestContext
    episode_id: str


@dataclass(frozen=True)
class DatingFlow:
    engine: Engine

    async def after_write(self, event: WriteEvent) -> None:
        episodes = {
            found
            for resource in (event.resource, event.previous_resource)
            if (found := dating_episode(event.res_type, event.res_id, resource)) is not None
        }
        if not episodes:
            return
        ctx = RequestContext(event.ctx.base, PREGNANCY_CARD, event.ctx.request_id)
        pending = [_Pending(ctx, e) for e in sorted(episodes)]
        await at_unit_end(event.conn, _UNIT_KEY, self._refresh_all, pending)

    async def _refresh_all(self, conn: AsyncConnection, pending: list[_Pending]) -> None:
        done: set[str] = set()
        for item in pending:
            if item.episode_id not in done:
                done.add(item.episode_id)
                await self._refresh(conn, item.ctx, item.episode_id)

    async def _refresh(self, conn: AsyncConnection, ctx: RequestContext, episode_id: str) -> None:
        engine = self.engine
        found = await engine.search(ctx, "EpisodeOfCare", [("_id", episode_id)], 1, conn=conn)
        if not found or not is_pregnancy_episode(found[0]) or "patient" not in found[0]:
            return  # deleted, or not (any longer) a pregnancy: what it had stays as recorded
        episode = found[0]
        reference = f"EpisodeOfCare/{episode_id}"
        observations = await engine.search(
            ctx, "Observation", [(EPISODE_PARAM, reference)], MAX_OBSERVATIONS, conn=conn
        )
        for key, resource in wanted(episode, observations).items():
            stored = [o for o in observations if _derived_id(o) == f"{episode_id}-{key}"]
            await self._keep(conn, ctx, "Observation", stored[0] if stored else None, resource)
        due = dating(observations).due
        if due is None:
            return
        plans = await engine.search(
            ctx,
            "CarePlan",
            [(EPISODE_PARAM, reference), ("instantiates-canonical", PROGRAMME_URL)],
            10,
            conn=conn,
        )
        existing = plans[0] if plans else None
        patient_id = str(episode["patient"]["reference"]).rsplit("/", 1)[-1]
        plan = programme.care_plan(patient_id, episode_id, due, existing)
        await self._keep(conn, ctx, "CarePlan", existing, plan)

    async def _keep(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        res_type: str,
        stored: Resource | None,
        new: Resource | None,
    ) -> None:
        """Create, update or delete the derived resource so that it is `new` (nothing when it already is)."""
        if stored is None and new is not None:
            await self.engine.create(ctx, res_type, new, conn=conn)
        elif stored is not None and new is None:
            await self.engine.delete(ctx, res_type, stored["id"], conn=conn)
        elif stored is not None and new is not None and not _same(stored, new):
            await self.engine.update(ctx, res_type, stored["id"], {**new, "id": stored["id"]}, conn=conn)


def _derived_id(observation: Mapping[str, Any]) -> str | None:
    for identifier in observation.get("identifier", []):
        if identifier.get("system") == DERIVED_SYSTEM:
            return str(identifier.get("value"))
    return None


def install(engine: Engine) -> DatingFlow:
    flow = DatingFlow(engine)
    engine.svc.hooks.after_write.add(Stage.DERIVE, flow.after_write)
    return flow
