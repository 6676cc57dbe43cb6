"""The basic programme is published as a stored PlanDefinition, so CarePlans' instantiatesCanonical resolves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from app.resources.pregnancy_card.codes import PROGRAMME_URL
from app.resources.pregnancy_card.programme import PLAN_DEFINITION_ID, plan_definition, programme
from app.resources.pregnancy_card.publish import publish_programme

PATH = f"/PlanDefinition/{PLAN_DEFINITION_ID}"


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


async def test_the_programme_is_published_once_and_found_by_its_url(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.get(PATH)).status_code == 404
    assert await publish_programme(app.state.engine) is True
    stored = await client.get(PATH)
    assert stored.status_code == 200
    assert _content(stored.json()) == plan_definition()
    assert len(stored.json()["action"]) == len(programme())
    found = await client.get(f"/PlanDefinition?url={PROGRAMME_URL}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [PLAN_DEFINITION_ID]
    # a restart with the same release writes nothing
    assert await publish_programme(app.state.engine) is False
    assert (await client.get(PATH)).json()["meta"]["versionId"] == "1"


async def test_a_changed_or_deleted_programme_is_written_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await publish_programme(app.state.engine)
    older = {**plan_definition(), "title": "Et eldre basisprogram"}
    assert (await client.put(PATH, json=older)).status_code == 200
    assert await publish_programme(app.state.engine) is True
    current = (await client.get(PATH)).json()
    assert current["meta"]["versionId"] == "3"
    assert _content(current) == plan_definition()
    assert (await client.delete(PATH)).status_code in (200, 204)
    assert await publish_programme(app.state.engine) is True
    assert _content((await client.get(PATH)).json()) == plan_definition()


async def test_with_authentication_on_the_server_publishes_it_and_personnel_read_it(
    secure_app: FastAPI, secure_client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    assert await publish_programme(secure_app.state.engine) is True
    token = mint(subject="hpr-1000001", scopes="user/*.rs", hpr="1000001", orgnr="912345680")
    read = await secure_client.get(PATH, headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    assert read.json()["url"] == PROGRAMME_URL
