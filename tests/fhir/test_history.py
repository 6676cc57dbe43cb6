"""Instance, type and system _history with _count, _since and paging (both databases)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from tests.fhir.fixtures import FHIR_JSON, observation, patient


async def make_versions(client: httpx.AsyncClient) -> dict[str, Any]:
    body = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    for gender in ("male", "other"):
        body = (
            await client.put(
                f"/Patient/{body['id']}", content=orjson.dumps({**body, "gender": gender}), headers=FHIR_JSON
            )
        ).json()
    await client.delete(f"/Patient/{body['id']}")
    return body  # type: ignore[no-any-return]


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_instance_history_newest_first_with_delete_entry(client: httpx.AsyncClient) -> None:
    body = await make_versions(client)
    bundle = (await client.get(f"/Patient/{body['id']}/_history")).json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "history"
    assert bundle["total"] == 4
    entries = bundle["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert entries[0]["request"] == {"method": "DELETE", "url": f"Patient/{body['id']}"}
    assert "resource" not in entries[0]
    assert entries[1]["resource"]["gender"] == "other"
    assert entries[3]["request"] == {"method": "POST", "url": "Patient"}
    assert entries[3]["response"]["status"].startswith("201")
    assert entries[1]["fullUrl"].endswith(f"/Patient/{body['id']}")


async def test_history_of_unknown_resource_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/Patient/nobody/_history")).status_code == 404
    assert (await client.get("/Foo/_history")).status_code == 404


async def test_type_and_system_history(client: httpx.AsyncClient) -> None:
    await make_versions(client)
    unattached = {k: v for k, v in observation().items() if k != "subject"}
    await client.post("/Observation", content=orjson.dumps(unattached), headers=FHIR_JSON)
    patients = (await client.get("/Patient/_history")).json()
    assert patients["total"] == 4
    assert {e["fullUrl"].split("/")[-2] for e in patients["entry"]} == {"Patient"}
    everything = (await client.get("/_history")).json()
    assert everything["total"] == 5
    assert everything["entry"][0]["resource"]["resourceType"] == "Observation"


async def test_count_paging_is_stable_while_data_changes(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    first = (await client.get("/Patient/_history", params={"_count": "2"})).json()
    assert len(first["entry"]) == 2
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert {"self", "first", "next"} <= links.keys()
    # New writes after the first page must not shift the later pages.
    await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    seen = [e["resource"]["id"] for e in first["entry"]]
    next_url: str | None = links["next"]
    while next_url:
        page = (await client.get(relative(next_url))).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
        next_url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == 5
    assert len(set(seen)) == 5


async def test_since_filters_by_last_updated(client: httpx.AsyncClient) -> None:
    old = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    await asyncio.sleep(0.01)
    new = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    since = new["meta"]["lastUpdated"]
    bundle = (await client.get("/Patient/_history", params={"_since": since})).json()
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert ids == [new["id"]]
    assert old["id"] not in ids
    assert all(f"_since={since}".replace(":", "%3A") in link["url"] for link in bundle["link"])
    all_day = (await client.get("/Patient/_history", params={"_since": "2000-01-01"})).json()
    assert all_day["total"] == 2


async def test_invalid_history_parameters_are_400(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_history", params={"_count": "-1"})).status_code == 400
    assert (await client.get("/_history", params={"_since": "last tuesday"})).status_code == 400
    assert (await client.get("/_history", params={"_cursor": "x"})).status_code == 400


async def test_at_keeps_the_versions_current_during_the_period(client: httpx.AsyncClient) -> None:
    created = (await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)).json()
    url = f"/Patient/{created['id']}"
    versions = [created]
    for gender in ("male", "other"):
        await asyncio.sleep(0.01)
        reply = await client.put(
            url, content=orjson.dumps({**versions[-1], "gender": gender}), headers=FHIR_JSON
        )
        versions.append(reply.json())
    moments = [v["meta"]["lastUpdated"] for v in versions]

    async def current_at(at: str, path: str = f"{url}/_history") -> list[str]:
        reply = await client.get(path, params={"_at": at})
        assert reply.status_code == 200, reply.text
        return [e["resource"]["meta"]["versionId"] for e in reply.json().get("entry", [])]

    # At the instant version 2 was written it was current, and version 1 no longer was.
    assert await current_at(moments[1]) == ["2"]
    assert await current_at(moments[2]) == ["3"]
    assert await current_at(moments[0]) == ["1"]
    # A period at coarser precision takes every version current at some moment of it.
    assert await current_at(moments[0][:4]) == ["3", "2", "1"]
    assert await current_at("1999") == []
    assert await current_at("2999") == ["3"]  # the last version is still current
    # Type and system history too, and the links keep _at.
    reply = await client.get("/Patient/_history", params={"_at": moments[1]})
    assert [e["resource"]["meta"]["versionId"] for e in reply.json()["entry"]] == ["2"]
    assert all("_at=" in link["url"] for link in reply.json()["link"])
    assert (await client.get("/_history", params={"_at": "yesterday"})).status_code == 400


async def test_strict_history_refuses_what_it_does_not_understand(client: httpx.AsyncClient) -> None:
    strict = {"Prefer": "handling=strict"}
    assert (await client.get("/_history", params={"_list": "x"}, headers=strict)).status_code == 400
    assert (await client.get("/Patient/_history", params={"name": "x"}, headers=strict)).status_code == 400
    assert (await client.get("/_history", params={"_list": "x"})).status_code == 200  # lenient: ignored
    known = {"_count": "5", "_since": "2000-01-01", "_at": "2026", "_pretty": "true"}
    assert (await client.get("/_history", params=known, headers=strict)).status_code == 200
