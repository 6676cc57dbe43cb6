"""The pilot switch: where the pregnancy health card is enabled, as data (README.md, "Access and the pilot switch").

The area is a JSON file named by the setting PREGNANCY_CARD_PILOT_FILE:

    {"organizations": ["<orgnr>", ...], "municipalities": ["<kommunenummer>", ...],
     "clients": ["<client_id>", ...], "description": "..."}

An organisation number may be a region (RHF), a health trust (HF) or any unit: a writer is in the area when
its own organisation, or any organisation above it through Organization.partOf, is listed, or when one of
those organisations' addresses lies in a listed municipality (no-basis-municipalitycode). `clients` lists
system clients without an organisation that may write everywhere (a national register's integration).

The file is read again when its modification time or size changes: the area changes without a restart.
Unset, or a file listing nothing: the card is enabled nowhere. A file that cannot be read or has the wrong
shape never stops the server: the error is logged (the file holds no patient data, but only its path and
the problem are logged) and the last good area stays in force (enabled nowhere if there never was one).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.resources.no_basis.identifiers import ORGNR_SYSTEM
from app.resources.no_basis.search import MUNICIPALITY_EXTENSION

log = logging.getLogger(__name__)

_ORGNR = re.compile(r"\d{9}")
_MUNICIPALITY = re.compile(r"\d{4}")


@dataclass(frozen=True)
class PilotArea:
    organizations: frozenset[str] = frozenset()
    municipalities: frozenset[str] = frozenset()
    clients: frozenset[str] = frozenset()
    description: str = ""


NOWHERE = PilotArea()


class BadPilotFile(ValueError):
    """The pilot file's content is not a pilot area (the message says where)."""


def parse_area(data: Any) -> PilotArea:
    """The area a pilot file's parsed JSON states; BadPilotFile if it is not one."""
    if not isinstance(data, Mapping):
        raise BadPilotFile("the file must hold a JSON object")
    unknown = set(data) - {"organizations", "municipalities", "clients", "description"}
    if unknown:
        raise BadPilotFile(f"unknown keys: {', '.join(sorted(unknown))}")

    def strings(key: str, pattern: re.Pattern[str] | None, what: str) -> frozenset[str]:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadPilotFile(f"{key} must be a list of strings")
        if pattern is not None:
            wrong = [v for v in values if not pattern.fullmatch(v)]
            if wrong:
                raise BadPilotFile(f"{key}: {wrong[0]!r} is not {what}")
        return frozenset(values)

    description = data.get("description", "")
    if not isinstance(description, str):
        raise BadPilotFile("description must be a string")
    return PilotArea(
        organizations=strings("organizations", _ORGNR, "a nine-digit organisation number"),
        municipalities=strings("municipalities", _MUNICIPALITY, "a four-digit kommunenummer"),
        clients=strings("clients", None, ""),
        description=description,
    )


def in_area(area: PilotArea, orgnrs_with_ancestors: Iterable[str], municipality_codes: Iterable[str]) -> bool:
    """Whether a writer whose organisations (with those above them) and their municipalities are given
    lies in the pilot area."""
    return not area.organizations.isdisjoint(orgnrs_with_ancestors) or not area.municipalities.isdisjoint(
        municipality_codes
    )


class PilotFile:
    """The pilot area of one file, read again when the file changes."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.use(path)

    def use(self, path: str | os.PathLike[str] | None) -> None:
        """Take the area from another file from now on (tests; the setting itself needs a restart)."""
        self.path = Path(path) if path else None
        self._area = NOWHERE
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the content last tried
        self._warned_missing = False

    def area(self) -> PilotArea:
        """The area now in force (one stat of the file per call; it is parsed only when it changed)."""
        if self.path is None:
            return NOWHERE
        try:
            stat = self.path.stat()
        except OSError as error:
            if not self._warned_missing:
                log.error(
                    "pregnancy card pilot file %s cannot be read (%s); the last good area stays in force",
                    self.path,
                    error.strerror,
                )
                self._warned_missing = True
            return self._area
        self._warned_missing = False
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._seen = seen
            self._load()
        return self._area

    def _load(self) -> None:
        assert self.path is not None
        try:
            area = parse_area(orjson.loads(self.path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, BadPilotFile) as error:
            problem = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0][:200]
            log.error(
                "pregnancy card pilot file %s is not a valid pilot area (%s); the last good area stays in force",
                self.path,
                problem,
            )
            return
        if area != self._area:
            log.info(
                "pregnancy card pilot area from %s: %d organisations, %d municipalities, %d clients",
                self.path,
                len(area.organizations),
                len(area.municipalities),
                len(area.clients),
            )
        self._area = area


# -- where a writer is -----------------------------------------------------------------------------------

MAX_PART_OF_DEPTH = 10  # unit -> HF -> RHF is three; more is a loop or a data anomaly


def municipalities_of(organization: Mapping[str, Any]) -> set[str]:
    """The kommunenummer of an Organization's addresses (no-basis-municipalitycode on Address.district)."""
    codes: set[str] = set()
    for address in organization.get("address") or []:
        if not isinstance(address, Mapping):
            continue
        district = address.get("_district")
        extensions = district.get("extension") if isinstance(district, Mapping) else None
        for extension in extensions or []:
            if not isinstance(extension, Mapping) or extension.get("url") != MUNICIPALITY_EXTENSION:
                continue
            coding = extension.get("valueCoding")
            code = coding.get("code") if isinstance(coding, Mapping) else extension.get("valueCode")
            if isinstance(code, str):
                codes.add(code)
    return codes


def orgnrs_of(organization: Mapping[str, Any]) -> set[str]:
    return {
        i["value"]
        for i in organization.get("identifier") or []
        if isinstance(i, Mapping) and i.get("system") == ORGNR_SYSTEM and isinstance(i.get("value"), str)
    }


def part_of_id(organization: Mapping[str, Any]) -> str | None:
    part_of = organization.get("partOf")
    reference = part_of.get("reference") if isinstance(part_of, Mapping) else None
    if isinstance(reference, str) and reference.startswith("Organization/") and reference.count("/") == 1:
        return reference.removeprefix("Organization/")
    return None


Lookup = Callable[[list[tuple[str, str]]], Awaitable[list[dict[str, Any]]]]


async def writer_places(orgnrs: Iterable[str], find: Lookup) -> tuple[frozenset[str], frozenset[str]]:
    """The writer's organisation numbers with those of every organisation above them (partOf), and the
    municipalities of all of them. `find(criteria)` searches Organization (the guard's is a search through
    the engine as the pack, in the write's unit of work)."""
    numbers = set(orgnrs)
    municipalities: set[str] = set()
    seen: set[str] = set()
    level: list[dict[str, Any]] = []
    for orgnr in sorted(numbers):
        level += await find([("identifier", f"{ORGNR_SYSTEM}|{orgnr}")])
    for _depth in range(MAX_PART_OF_DEPTH):
        parents: set[str] = set()
        for organization in level:
            if str(organization.get("id")) in seen:
                continue
            seen.add(str(organization.get("id")))
            numbers |= orgnrs_of(organization)
            municipalities |= municipalities_of(organization)
            parent = part_of_id(organization)
            if parent is not None and parent not in seen:
                parents.add(parent)
        if not parents:
            break
        level = await find([("_id", ",".join(sorted(parents)))])
    return frozenset(numbers), frozenset(municipalities)
