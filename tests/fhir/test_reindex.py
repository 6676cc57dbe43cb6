"""$reindex: stored SearchParameter resources come into force and existing resources are re-indexed."""

from __future__ import annotations

import httpx
import orjson

from tests.conftest import BASE, app_client
from tests.databases import TestDatabase
from tests.fhir.fixtures import FHIR_JSON, patient

NICKNAME = {
    "resourceType": "SearchParameter",
    "id": "patient-nickname",
    "url": "http://helsebro.example/fhir/SearchParameter/patient-nickname",
    "name": "nickname",
    "status": "active",
    "description": "A nickname of the patient",
    "code": "kallenavn",  # a code no other test uses: the test app (and its registry) lives for the session
    "base": ["Patient"],
    "type": "string",
    "expression": "Patient.name.where(use='nickname').given",
}


async def test_custom_search_parameter_is_honoured_after_reindex(client: httpx.AsyncClient) -> None:
    body = {
        **patient(),
        "id": "kari",
        "name": [{"family": "Nordmann", "given": ["Kari"]}, {"use": "nickname", "given": ["Kajsa"]}],
    }
    await client.put("/Patient/kari", content=orjson.dumps(body), headers=FHIR_JSON)
    await client.put("/SearchParameter/patient-nickname", content=orjson.dumps(NICKNAME), headers=FHIR_JSON)

    before = (await client.get("/Patient", params={"kallenavn": "kajsa"})).json()
    assert before["entry"][-1]["search"]["mode"] == "outcome"  # unknown until $reindex: reported, ignored
    strict = await client.get(
        "/Patient", params={"kallenavn": "kajsa"}, headers={"Prefer": "handling=strict"}
    )
    assert strict.status_code == 400

    report = await client.post("/$reindex")
    assert report.status_code == 200
    messages = " ".join(i["diagnostics"] for i in report.json()["issue"])
    assert "Patient:kallenavn" in messages

    after = (await client.get("/Patient", params={"kallenavn": "kajsa"})).json()
    assert [e["resource"]["id"] for e in after["entry"]] == ["kari"]
    assert (await client.get("/Patient", params={"kallenavn": "kari"})).json()["total"] == 0
    statement = (await client.get("/metadata")).json()
    patient_caps = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "kallenavn" in {p["name"] for p in patient_caps["searchParam"]}

    # new writes are indexed with the new parameter straight away
    other = {**patient(given="Ola"), "id": "ola", "name": [{"use": "nickname", "given": ["Kajsa"]}]}
    await client.put("/Patient/ola", content=orjson.dumps(other), headers=FHIR_JSON)
    assert (await client.get("/Patient", params={"kallenavn": "kajsa"})).json()["total"] == 2


async def test_type_level_reindex_and_unusable_parameters(client: httpx.AsyncClient) -> None:
    bad = {**NICKNAME, "id": "bad", "code": "bad", "expression": "Patient.name.select(given)"}
    await client.put("/SearchParameter/bad", content=orjson.dumps(bad), headers=FHIR_JSON)
    await client.put("/Patient/p1", content=orjson.dumps({**patient(), "id": "p1"}), headers=FHIR_JSON)
    report = await client.post("/Patient/$reindex")
    assert report.status_code == 200
    issues = report.json()["issue"]
    assert issues[0]["diagnostics"] == "Reindexed 1 resources"
    assert any(i["severity"] == "warning" and "SearchParameter/bad" in i["diagnostics"] for i in issues)
    assert (await client.post("/Unicorn/$reindex")).status_code == 404


async def test_absolute_references_are_judged_by_the_configured_base_url_alone(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    """With no BASE_URL (authentication off) no absolute reference is local: not on write, not after
    $reindex (the request's own URL used to make it local on write and foreign after a reindex)."""
    async with app_client(session_databases[backend], base_url="") as (http, _app):
        await http.put("/Patient/p1", content=orjson.dumps({**patient(), "id": "p1"}), headers=FHIR_JSON)
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Puls"},
            "subject": {"reference": f"{BASE}/Patient/p1"},  # the URL the test client calls
        }
        await http.post("/Observation", content=orjson.dumps(observation), headers=FHIR_JSON)

        before = await local_matches_on(http)
        await http.post("/$reindex")
        assert before == await local_matches_on(http) == 0
    async with app_client(session_databases[backend]) as (http, _app):  # BASE_URL set: local, and stays so
        await http.put("/Patient/p1", content=orjson.dumps({**patient(), "id": "p1"}), headers=FHIR_JSON)
        observation["subject"] = {"reference": f"{BASE}/Patient/p1"}
        await http.post("/Observation", content=orjson.dumps(observation), headers=FHIR_JSON)
        before = await local_matches_on(http)
        await http.post("/$reindex")
        assert before == await local_matches_on(http) == 1


async def local_matches_on(http: httpx.AsyncClient) -> int:
    found = await http.get("/Observation", params={"subject": "Patient/p1", "_summary": "count"})
    return int(found.json()["total"])
