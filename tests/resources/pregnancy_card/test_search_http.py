"""The pack's `episode-of-care` search parameter through the REST API, on SQLite and PostgreSQL: a
pregnancy's resources are found by the workflow-episodeOfCare extension, indexed when they are written."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from app.resources.pregnancy_card.codes import EPISODE_EXTENSION, EPISODE_TYPE_SNOMED
from app.resources.pregnancy_card.search import EPISODE_PARAM_URL
from tests.fhir.fixtures import FHIR_JSON


async def created(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    response = await client.post(
        f"/{resource['resourceType']}", content=orjson.dumps(resource), headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def of_episode(resource: dict[str, Any], episode_id: str) -> dict[str, Any]:
    extension = {"url": EPISODE_EXTENSION, "valueReference": {"reference": f"EpisodeOfCare/{episode_id}"}}
    return {**resource, "extension": [extension]}


async def found(client: httpx.AsyncClient, query: str) -> set[str]:
    response = await client.get(query)
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"}


async def test_a_pregnancys_resources_are_found_by_its_episode(client: httpx.AsyncClient) -> None:
    patient = await created(client, {"resourceType": "Patient", "gender": "female"})
    episodes = [
        await created(
            client,
            {
                "resourceType": "EpisodeOfCare",
                "status": "active",
                "type": [{"coding": [EPISODE_TYPE_SNOMED]}],
                "patient": {"reference": f"Patient/{patient}"},
            },
        )
        for _ in range(2)
    ]
    weight = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 68.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }
    first = await created(client, of_episode(weight, episodes[0]))
    second = await created(client, of_episode(weight, episodes[1]))
    unrelated = await created(client, weight)
    note = await created(
        client,
        of_episode(
            {
                "resourceType": "Communication",
                "status": "completed",
                "subject": {"reference": f"Patient/{patient}"},
            },
            episodes[0],
        ),
    )

    assert await found(client, f"/Observation?episode-of-care=EpisodeOfCare/{episodes[0]}") == {first}
    assert await found(client, f"/Observation?episode-of-care={episodes[1]}") == {second}
    missing = f"/Observation?subject=Patient/{patient}&episode-of-care:missing=true"
    assert await found(client, missing) == {unrelated}
    assert await found(client, f"/Communication?episode-of-care=EpisodeOfCare/{episodes[0]}") == {note}


async def test_the_parameter_is_advertised(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    observation = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Observation")
    params = {p["name"]: p for p in observation.get("searchParam", [])}
    assert params["episode-of-care"]["definition"] == EPISODE_PARAM_URL
    assert params["episode-of-care"]["type"] == "reference"
