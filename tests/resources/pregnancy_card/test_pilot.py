"""The pilot area as data (pilot.py) and what counts as card content (content.py): pure tests."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.resources.no_basis.identifiers import ORGNR_SYSTEM
from app.resources.no_basis.search import MUNICIPALITY_EXTENSION
from app.resources.pregnancy_card.codes import (
    CARD_SYSTEM,
    EPISODE_EXTENSION,
    EPISODE_TYPE_CARD,
    EPISODE_TYPE_SNOMED,
    PREGNANCY_CONDITION,
    PROGRAMME_URL,
)
from app.resources.pregnancy_card.content import is_card_content, is_direct_content, is_note
from app.resources.pregnancy_card.guard import citizen_may_write
from app.resources.pregnancy_card.pilot import (
    NOWHERE,
    BadPilotFile,
    PilotArea,
    PilotFile,
    in_area,
    municipalities_of,
    parse_area,
    writer_places,
)

REGION, TRUST, UNIT = "983658725", "983974694", "974589095"


def write(path: Path, content: object, mtime: int) -> None:
    """Write the file and give it a modification time of its own (a reload must not hang on the clock)."""
    path.write_bytes(content if isinstance(content, bytes) else orjson.dumps(content))
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))


def test_in_area() -> None:
    area = PilotArea(organizations=frozenset({TRUST}), municipalities=frozenset({"4601"}))
    assert in_area(area, {UNIT, TRUST}, ())  # a unit of the listed health trust
    assert in_area(area, {UNIT}, {"4601"})  # a unit in a listed municipality
    assert not in_area(area, {UNIT, REGION}, {"0301"})
    assert not in_area(NOWHERE, {TRUST}, {"4601"})
    assert not in_area(area, (), ())


def test_parse_area() -> None:
    area = parse_area({"organizations": [REGION], "municipalities": ["4601"], "description": "Vest"})
    assert area == PilotArea(frozenset({REGION}), frozenset({"4601"}), frozenset(), "Vest")
    assert parse_area({}) == NOWHERE
    assert parse_area({"clients": ["register"]}).clients == {"register"}
    for bad in (
        [REGION],
        {"organizations": REGION},
        {"organizations": ["12345"]},
        {"municipalities": ["46O1"]},
        {"organisations": [REGION]},  # a misspelt key is not silently "enabled nowhere"
        {"description": 5},
    ):
        with pytest.raises(BadPilotFile):
            parse_area(bad)


def test_file_is_read_again_when_it_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "pilot.json"
    write(path, {"organizations": [TRUST]}, 1_000)
    pilot = PilotFile(path)
    assert pilot.area().organizations == {TRUST}
    write(path, {"organizations": [TRUST, REGION], "municipalities": ["4601"]}, 2_000)
    assert pilot.area().organizations == {TRUST, REGION}  # no restart
    assert pilot.area().municipalities == {"4601"}

    # a bad file keeps the last good area, and says so in the log (no content of the file)
    with caplog.at_level(logging.ERROR):
        write(path, b"{not json", 3_000)
        assert pilot.area().organizations == {TRUST, REGION}
        write(path, {"organizations": ["not-a-number"]}, 4_000)
        assert pilot.area().organizations == {TRUST, REGION}
        path.unlink()
        assert pilot.area().organizations == {TRUST, REGION}
    assert "not a valid pilot area" in caplog.text
    assert "cannot be read" in caplog.text
    assert "not-a-number" in caplog.text  # the problem names the bad value (an orgnr, never patient data)

    write(path, {"organizations": []}, 5_000)
    assert pilot.area() == NOWHERE  # switched off without a restart


def test_unset_or_bad_from_the_start_is_nowhere(tmp_path: Path) -> None:
    assert PilotFile(None).area() == NOWHERE
    assert PilotFile("").area() == NOWHERE
    assert PilotFile(tmp_path / "absent.json").area() == NOWHERE
    bad = tmp_path / "bad.json"
    write(bad, b"[]", 1_000)
    assert PilotFile(bad).area() == NOWHERE


def test_repo_pilot_files_are_valid() -> None:
    root = Path(__file__).parents[3]
    demo = PilotFile(root / "app" / "resources" / "pregnancy_card" / "pilot-demo.json").area()
    # app/demo.py's hospital, GP office and health station (tests/test_demo.py checks it against the demo)
    assert demo.organizations == {"991000003", "992000007", "994000004"}
    assert PilotFile(Path(__file__).parent / "pilot-scenario.json").area().organizations


def organization(
    res_id: str, orgnr: str, part_of: str | None = None, municipality: str | None = None
) -> dict[str, Any]:
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": res_id,
        "identifier": [{"system": ORGNR_SYSTEM, "value": orgnr}],
    }
    if part_of:
        org["partOf"] = {"reference": f"Organization/{part_of}"}
    if municipality:
        extension = {"url": MUNICIPALITY_EXTENSION, "valueCoding": {"code": municipality}}
        org["address"] = [{"district": "x", "_district": {"extension": [extension]}}]
    return org


async def test_writer_places_follow_part_of() -> None:
    orgs = {
        "region": organization("region", REGION, part_of="unit"),  # a loop back down: followed once
        "trust": organization("trust", TRUST, part_of="region", municipality="4601"),
        "unit": organization("unit", UNIT, part_of="trust"),
    }
    asked: list[list[tuple[str, str]]] = []

    async def find(criteria: list[tuple[str, str]]) -> list[dict[str, Any]]:
        asked.append(criteria)
        name, value = criteria[0]
        if name == "identifier":
            return [o for o in orgs.values() if value.endswith(f"|{o['identifier'][0]['value']}")]
        return [orgs[i] for i in value.split(",") if i in orgs]

    numbers, municipalities = await writer_places([UNIT], find)
    assert numbers == {UNIT, TRUST, REGION}
    assert municipalities == {"4601"}
    assert len(asked) == 3  # the unit by orgnr, then one search per level
    assert municipalities_of({"address": [{"city": "Bergen"}]}) == set()
    assert await writer_places(["000000000"], find) == (frozenset({"000000000"}), frozenset())


def concept(coding: Mapping[str, str]) -> dict[str, Any]:
    return {"coding": [dict(coding)]}


NOTE = {
    "resourceType": "Communication",
    "status": "completed",
    "category": [concept({"system": CARD_SYSTEM, "code": "sporsmal"})],
    "subject": {"reference": "Patient/kari"},
}


async def test_card_content() -> None:
    episodes = {"preg": {"resourceType": "EpisodeOfCare", "type": [concept(EPISODE_TYPE_CARD)]}}

    async def episode(res_id: str) -> Mapping[str, Any] | None:
        return episodes.get(res_id)

    content: list[dict[str, Any]] = [
        {"resourceType": "EpisodeOfCare", "type": [concept(EPISODE_TYPE_SNOMED)]},
        {"resourceType": "EpisodeOfCare", "type": [concept(EPISODE_TYPE_CARD)]},
        {"resourceType": "Condition", "code": concept(PREGNANCY_CONDITION)},
        {"resourceType": "CarePlan", "instantiatesCanonical": [PROGRAMME_URL]},
        {"resourceType": "Observation", "extension": [{"url": EPISODE_EXTENSION}]},
        NOTE,
    ]
    for resource in content:
        assert is_direct_content(resource), resource
        assert await is_card_content(resource, episode)
    encounter = {"resourceType": "Encounter", "episodeOfCare": [{"reference": "EpisodeOfCare/preg"}]}
    assert not is_direct_content(encounter)
    assert await is_card_content(encounter, episode)
    other: list[dict[str, Any]] = [
        {"resourceType": "EpisodeOfCare", "type": [concept({"system": "x", "code": "424525001"})]},
        {"resourceType": "Condition", "code": concept({"system": "x", "code": "1"})},
        {"resourceType": "CarePlan"},
        {"resourceType": "Communication", "category": [concept({"system": "x", "code": "notat"})]},
        {"resourceType": "Encounter", "episodeOfCare": [{"reference": "EpisodeOfCare/other"}]},
        {"resourceType": "Observation"},
    ]
    for resource in other:
        assert not await is_card_content(resource, episode), resource
    assert not await is_card_content(None, episode)


def test_citizen_writes_notes_only() -> None:
    assert is_note(NOTE)
    assert citizen_may_write(None, NOTE)
    assert citizen_may_write(NOTE, {**NOTE, "status": "in-progress"})
    assert citizen_may_write(NOTE, None)  # deleting her own note
    assert not citizen_may_write(None, {k: v for k, v in NOTE.items() if k != "subject"})
    observation = {"resourceType": "Observation", "extension": [{"url": EPISODE_EXTENSION}]}
    assert not citizen_may_write(None, observation)
    assert not citizen_may_write(observation, None)
    assert not citizen_may_write(
        None, {"resourceType": "EpisodeOfCare", "type": [concept(EPISODE_TYPE_CARD)]}
    )
