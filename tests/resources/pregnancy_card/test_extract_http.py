"""`GET /$pregnancy-extract` through the API, on SQLite and PostgreSQL, in the secured care setting of
tests/security/scenario.py (synthetic identities): a research system client gets one NDJSON line per
finished pregnancy without direct identifiers, with stable pseudonyms; anyone else is refused, audited."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

from app.fhir.interactions.export import NDJSON
from app.resources.pregnancy_card.examples import episode, pregnancy
from app.resources.pregnancy_card.extract import FORMAT
from app.resources.pregnancy_card.extract_operation import RESEARCH_SCOPE, ExtractConfig
from app.security.audit import SERVICE_SYSTEM
from tests.fhir.bundles import put_each
from tests.resources.pregnancy_card.builders import registered_pregnancy
from tests.security.helpers import World, auth_header
from tests.security.scenario import GP_HPR, GP_OFFICE_ORGNR, KARI_FNR

KEY = b"test-only pseudonym key, 32+ bytes long"
URL = "/$pregnancy-extract"


@pytest.fixture
def keyed(secure_app: FastAPI) -> Iterator[None]:
    """The secure app with a pseudonym key (the test settings have none)."""
    config: ExtractConfig = secure_app.state.pregnancy_extract
    secure_app.state.pregnancy_extract = dataclasses.replace(config, key=KEY)
    yield
    secure_app.state.pregnancy_extract = config


def research(mint: Callable[..., str], scopes: str = f"system/*.rs {RESEARCH_SCOPE}") -> dict[str, str]:
    return auth_header(mint(subject="birth-registry", scopes=scopes, client_id="birth-registry"))


def personnel(mint: Callable[..., str], scopes: str) -> dict[str, str]:
    token = mint(subject=f"hpr-{GP_HPR}", scopes=scopes, hpr=GP_HPR, orgnr=GP_OFFICE_ORGNR, category="LE")
    return auth_header(token)


def pregnancy_of(pid: str, eid: str, end: str | None) -> list[dict[str, Any]]:
    """The builders' pregnancy for a woman of the scenario (its organisations and GP are the scenario's)."""
    scenario_ids = {"Organization/gp-office", "Practitioner/gp"}
    out = []
    for r in registered_pregnancy(pid, eid):
        if f"{r['resourceType']}/{r['id']}" in scenario_ids or r["resourceType"] == "Patient":
            continue
        if r["resourceType"] == "EpisodeOfCare" and end is not None:
            r = {**r, "status": "finished", "period": {"start": r["period"]["start"], "end": end}}
        out.append(r)
    return out


async def seeded(world: World) -> None:
    """Kari: a finished pregnancy and an active one; Mari (builders, no fødselsnummer): a finished one."""
    mari = registered_pregnancy("mari", "mari-1")
    resources = [
        *pregnancy_of("kari", "kari-1", "2027-04-08"),
        *[r for r in mari if r["resourceType"] in ("Patient",)],
        *pregnancy_of("mari", "mari-1", "2027-04-10"),
        episode("kari-2", "kari", "2027-09-01"),  # active: not in the extract
        pregnancy("kari-2", "kari", "2027-07-15"),
    ]
    once = {f"{r['resourceType']}/{r['id']}": r for r in resources}  # the shared organisation once
    stored = await world.http.post("/", json=put_each(*once.values()), headers=world.system)
    assert stored.status_code == 200, stored.text


def lines(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n")
    return [orjson.loads(line) for line in body.splitlines()]


async def test_a_research_client_gets_finished_pregnancies_without_identifiers(
    world: World, mint: Callable[..., str], keyed: None
) -> None:
    await seeded(world)
    who = research(mint)
    first = await world.http.get(URL, headers=who)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith(NDJSON)
    records = lines(first.content)
    assert len(records) == 2  # Kari's and Mari's finished pregnancies, not Kari's active one
    assert all(r["format"] == FORMAT for r in records)
    assert len({r["woman"] for r in records}) == 2
    assert {r["end"]["ga"] for r in records} == {"40+2", "40+4"}
    body = first.text
    for identifying in (KARI_FNR, "Kari", "Fjordvik", "1985-03-14", "Mari", "Testesen", "1994-05-17"):
        assert identifying not in body, identifying
    for linking in ("kari", "mari", "Patient/", "EpisodeOfCare/", "Kan jeg fortsette"):
        assert linking not in body, linking
    # the same data and key: the same pseudonyms (and the same lines) on the next run
    second = await world.http.get(URL, headers=who)
    assert [r["woman"] for r in lines(second.content)] == [r["woman"] for r in records]
    assert second.content == first.content
    # _since: pregnancies that ended on or after the day
    since = await world.http.get(f"{URL}?_since=2027-04-09", headers=who)
    assert [r["end"]["ga"] for r in lines(since.content)] == ["40+4"]
    assert (await world.http.get(f"{URL}?_since=soon", headers=who)).status_code == 400
    # every read was the caller's search, audited under the extract's service
    audited = await world.audit("patient=Patient/kari")
    services = [c for e in audited for c in e.get("subtype", []) if c.get("system") == SERVICE_SYSTEM]
    assert any(c["code"] == "pregnancy-extract" for c in services), services


async def test_others_are_refused_and_the_refusal_audited(
    world: World, mint: Callable[..., str], keyed: None
) -> None:
    await seeded(world)
    for who in (
        world.system,  # system/*.cruds, but no research scope
        research(mint, f"system/Observation.rs {RESEARCH_SCOPE}"),  # research, but not every type read
        world.gp,  # personnel
        personnel(mint, f"user/*.cruds {RESEARCH_SCOPE}"),  # personnel, even with the research scope
        world.kari,  # the woman herself
    ):
        refused = await world.http.get(URL, headers=who)
        assert refused.status_code == 403, refused.text
        outcome = refused.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "forbidden"
    denials = [
        e for e in await world.audit("outcome=4") if "pregnancy extract" in (e.get("outcomeDesc") or "")
    ]
    assert len(denials) == 5, denials


async def test_without_a_pseudonym_key_the_extract_does_not_run(
    world: World, mint: Callable[..., str]
) -> None:
    response = await world.http.get(URL, headers=research(mint))
    assert response.status_code == 503, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
