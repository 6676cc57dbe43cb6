"""Who may write the pregnancy health card's content, and where (README.md, "Access and the pilot switch").

A before_write hook at Stage.DOMAIN (before the access policy at Stage.ACCESS, like the other packs'
guards), for every create, update (patch included) and delete whose new or replaced version is card
content (content.py):

- Personnel and system clients write card content only inside the pilot area (pilot.py): otherwise 403
  "Helsekort for gravide er ikke tatt i bruk her". Reads are never refused by the pilot: a card written
  inside the area stays readable by whoever has access to it, wherever they are.
- The server's own principals (SystemPrincipal: message adapters, loaders, the packs' derived writes) are
  not held to the pilot: they write on behalf of data that was already received or derived from a write
  that was itself allowed; refusing them would lose a received message's content, not protect anything.
- A citizen (the woman, or a proxy holder acting for her) writes only her own notes and questions (a
  Communication with a note category, about a patient): nothing else of the card. Whether she may act
  for that patient is the access policy's question (Stage.ACCESS), as for any write. Citizens are not
  held to the pilot: her card exists only where the service was enabled.

A refusal is audited like the security layer's own denials when main.py hands the guard its audit sink.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.hooks import Hooks, Stage, WriteEvent
from app.fhir.outcome import Category, FhirError
from app.resources.pregnancy_card.content import (
    encounter_episode_ids,
    is_direct_content,
    is_note,
    is_pregnancy_episode,
)
from app.resources.pregnancy_card.pilot import PilotArea, PilotFile, in_area, writer_places

# The pack reading organisations and referenced episodes for its guard (never patient data for a caller).
PREGNANCY_CARD = SystemPrincipal(
    "pregnancy-card", "the pregnancy health card checks where a writer is and what a write is part of"
)
MAX_ORGANIZATIONS = 20  # organisations sharing one orgnr, or one partOf level; more is a data anomaly

# (ctx, interaction, patients, why): the security layer's audit of a refused access.
DeniedAudit = Callable[[RequestContext, str, tuple[str, ...], str], Awaitable[None]]

CITIZEN_REFUSAL = (
    "Kvinnen kan legge til egne notater og spørsmål, ikke endre helsekortets innhold: "
    "a citizen may add her own notes and questions (Communication with a note category), "
    "not change the pregnancy health card's content"
)


def pilot_refusal(orgnrs: tuple[str, ...]) -> str:
    where = f"organisasjon {', '.join(orgnrs)}" if orgnrs else "ingen organisasjon"
    return (
        f"Helsekort for gravide er ikke tatt i bruk her ({where}): "
        "the pregnancy health card is not enabled for this organisation's area"
    )


@dataclass
class WriterArea:
    """Per request: whether each set of writer organisations lies in the area (decided once)."""

    decided: dict[tuple[tuple[str, ...], PilotArea], bool] = field(default_factory=dict)


def _patients(resource: Mapping[str, Any] | None) -> tuple[str, ...]:
    if resource is None:
        return ()
    found = []
    for key in ("subject", "patient"):
        ref = resource.get(key)
        reference = ref.get("reference") if isinstance(ref, Mapping) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            found.append(reference.removeprefix("Patient/"))
    return tuple(found)


def citizen_may_write(previous: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """A citizen's write of card content: only her notes (what it replaces must be a note too)."""
    if previous is not None and not is_note(previous):
        return False
    if new is None:
        return True  # deleting her note
    return is_note(new) and bool(_patients(new))


@dataclass(frozen=True)
class PregnancyCardGuard:
    engine: Engine
    pilot: PilotFile
    audit_denied: DeniedAudit | None = None

    async def check(self, event: WriteEvent) -> None:
        principal = event.ctx.principal
        if isinstance(principal, SystemPrincipal):
            return  # the server's own work: see the module docstring
        kind = getattr(principal, "kind", None)
        if kind not in ("personnel", "system", "citizen"):
            return  # not a verified caller: the security layer refuses it
        previous = event.previous_resource
        direct = is_direct_content(event.resource) or is_direct_content(previous)
        episodes = encounter_episode_ids(event.resource) + encounter_episode_ids(previous)
        if not direct and not episodes:
            return
        ctx = RequestContext(event.ctx.base, PREGNANCY_CARD, event.ctx.request_id)

        async def card_content() -> bool:
            """Direct content, or an Encounter of a pregnancy: its EpisodeOfCare is read only when the
            answer matters (the read is the server's, and audited as such)."""
            if direct:
                return True
            for res_id in episodes:
                found = await self.engine.search(ctx, "EpisodeOfCare", [("_id", res_id)], 1, conn=event.conn)
                if found and is_pregnancy_episode(found[0]):
                    return True
            return False

        if kind == "citizen":
            if not citizen_may_write(previous, event.resource) and await card_content():
                await self._refuse(event, CITIZEN_REFUSAL, previous)
            return
        orgnrs: tuple[str, ...] = tuple(getattr(principal, "orgnrs", ()))
        if not await self._in_area(event, ctx, principal, orgnrs) and await card_content():
            await self._refuse(event, pilot_refusal(orgnrs), previous)

    async def _in_area(
        self, event: WriteEvent, ctx: RequestContext, principal: object, orgnrs: tuple[str, ...]
    ) -> bool:
        """Whether the writer lies in the pilot area now (decided once per request and area)."""
        area = self.pilot.area()
        if (
            getattr(principal, "kind", None) == "system"
            and getattr(principal, "client_id", None) in area.clients
        ):
            return True
        decided = event.ctx.state(WriterArea).decided
        key = (orgnrs, area)
        if key not in decided:

            async def organizations(criteria: list[tuple[str, str]]) -> list[dict[str, Any]]:
                return await self.engine.search(
                    ctx, "Organization", criteria, MAX_ORGANIZATIONS, conn=event.conn
                )

            numbers, municipalities = await writer_places(orgnrs, organizations) if orgnrs else ((), ())
            decided[key] = in_area(area, numbers, municipalities)
        return decided[key]

    async def _refuse(self, event: WriteEvent, message: str, previous: Mapping[str, Any] | None) -> None:
        if self.audit_denied is not None:
            patients = _patients(event.resource) or _patients(previous)
            why = "pregnancy card: " + message.split(":")[0]
            await self.audit_denied(event.ctx, event.interaction, patients, why)
        raise FhirError(Category.FORBIDDEN, message, "forbidden")


def install(hooks: Hooks, guard: PregnancyCardGuard) -> None:
    hooks.before_write.add(Stage.DOMAIN, guard.check)
