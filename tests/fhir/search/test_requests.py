"""Search requests as such: unknown parameters and modifiers (lenient and strict handling), malformed
values, POST _search, system search, Bundle entries built from stored bytes, searches inside a batch
(both databases)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.conftest import BASE
from tests.fhir.fixtures import FHIR_JSON
from tests.fhir.search.helpers import (
    Resource,
    entries,
    get,
    ids,
    keys,
    observation,
    organization,
    patient,
    put_all,
    search,
    warnings,
)

STRICT = {"Prefer": "handling=strict"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def people(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        patient("kari", given="Kari", birthDate="1972-09-13"),
        patient("ola", given="Ola", birthDate="1980-01-01"),
        organization("helse-nord", "Helse Nord"),
        organization("kari", "Kari Legekontor"),  # the same id as a Patient
        observation("obs", subject="Patient/kari"),
    )
    return client


def assert_error(response: httpx.Response, status: int) -> Resource:
    assert response.status_code == status, response.text
    body: Resource = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body


async def test_unknown_parameter_is_ignored_and_reported(people: httpx.AsyncClient) -> None:
    bundle = await search(people, "Patient", {"given": "kari", "shoe-size": "42"})
    assert ids(bundle) == ["kari"]
    assert bundle["total"] == 1  # the outcome entry is not a match
    (outcome_entry,) = entries(bundle, "outcome")
    assert "fullUrl" not in outcome_entry
    (warning,) = warnings(bundle)
    assert "shoe-size" in warning
    # Only the unknown parameter is ignored: without a known one every patient matches.
    bundle = await search(people, "Patient", {"shoe-size": "42"})
    assert set(ids(bundle)) == {"kari", "ola"}


async def test_known_parameters_give_no_outcome_entry(people: httpx.AsyncClient) -> None:
    assert entries(await search(people, "Patient", {"given": "kari"}), "outcome") == []


async def test_unknown_parameter_with_strict_handling_is_400(people: httpx.AsyncClient) -> None:
    body = assert_error(await get(people, "Patient", {"given": "kari", "shoe-size": "42"}, STRICT), 400)
    assert "shoe-size" in str(body["issue"][0].get("diagnostics"))
    # Lenient handling, said out loud, is the default behaviour.
    lenient = await search(people, "Patient", {"shoe-size": "42"}, {"Prefer": "handling=lenient"})
    assert len(warnings(lenient)) == 1


async def test_unknown_modifier(people: httpx.AsyncClient) -> None:
    bundle = await search(people, "Patient", {"given:fuzzy": "kary", "birthdate": "1980"})
    assert ids(bundle) == ["ola"]
    (warning,) = warnings(bundle)
    assert "fuzzy" in warning
    assert_error(await get(people, "Patient", {"given:fuzzy": "kary"}, STRICT), 400)
    # A modifier of another parameter type is unknown here too.
    assert len(warnings(await search(people, "Patient", {"birthdate:exact": "1980"}))) == 1


async def test_unknown_chained_parameter_is_reported(people: httpx.AsyncClient) -> None:
    bundle = await search(people, "Observation", {"subject:Patient.shoe-size": "42"})
    assert ids(bundle) == ["obs"]
    assert len(warnings(bundle)) == 1
    assert_error(await get(people, "Observation", {"subject:Patient.shoe-size": "42"}, STRICT), 400)


MALFORMED = [
    ("Patient", "birthdate", "13.09.1972"),
    ("Patient", "birthdate", "1972-13-01"),
    ("Patient", "birthdate", "gt1972-02-30"),
    ("Patient", "_lastUpdated", "yesterday"),
    ("RiskAssessment", "probability", "abc"),
    ("RiskAssessment", "probability", "NaN"),
    ("RiskAssessment", "probability", "inf"),
    ("RiskAssessment", "probability", "1_000"),
    ("RiskAssessment", "probability", "gt"),
    ("Observation", "value-quantity", "heavy"),
    ("Observation", "value-quantity", "5.4|a|b|c"),
    ("Patient", "given:missing", "maybe"),
    ("Patient", "given.name", "x"),  # only references can be chained
    ("Observation", "subject:Organization", "x"),  # not a target of Observation.subject
    ("Patient", "_include", "Patient"),
    ("Patient", "_include", "Patient:given"),
    ("Patient", "_sort", "shoe-size"),
]


async def test_malformed_values_are_400(client: httpx.AsyncClient) -> None:
    for path, name, value in MALFORMED:
        response = await get(client, path, [(name, value)])
        assert response.status_code == 400, (name, value, response.text)
        assert_error(response, 400)


async def test_unknown_type_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/Shoe", params={"size": "42"}), 404)


async def test_post_search_gives_the_same_result_as_get(people: httpx.AsyncClient) -> None:
    query = [("given", "kari,ola"), ("birthdate", "ge1975"), ("_count", "5")]
    by_get = await search(people, "Patient", query)
    response = await people.post(
        "/Patient/_search", content="given=kari,ola&birthdate=ge1975&_count=5", headers=FORM
    )
    assert response.status_code == 200, response.text
    by_post = response.json()
    assert by_post["type"] == "searchset"
    assert ids(by_post) == ids(by_get) == ["ola"]
    assert by_post["total"] == by_get["total"] == 1
    assert [e["resource"] for e in by_post["entry"]] == [e["resource"] for e in by_get["entry"]]


async def test_post_search_combines_query_and_body(people: httpx.AsyncClient) -> None:
    response = await people.post("/Patient/_search?birthdate=1972", content="given=kari%2Cola", headers=FORM)
    assert response.status_code == 200
    assert ids(response.json()) == ["kari"]
    response = await people.post(
        "/Patient/_search",
        content=b"given=%C3%85se,kari",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert ids(response.json()) == ["kari"]


async def test_post_search_needs_a_form_body(people: httpx.AsyncClient) -> None:
    assert_error(await people.post("/Patient/_search", content=b'{"given": "kari"}', headers=FHIR_JSON), 415)
    assert_error(await people.post("/Patient/_search", content=b"given=kari"), 415)


async def test_system_search_with_type(people: httpx.AsyncClient) -> None:
    bundle = await search(people, "/", {"_type": "Patient,Organization", "_id": "kari,helse-nord"})
    assert sorted(keys(bundle)) == ["Organization/helse-nord", "Organization/kari", "Patient/kari"]
    assert bundle["total"] == 3
    bundle = await search(people, "/", {"_type": "Patient,Organization", "name": "kari"})
    assert sorted(keys(bundle)) == ["Organization/kari", "Patient/kari"]
    bundle = await search(people, "/", {"_type": "Organization", "_id": "kari"})
    assert keys(bundle) == ["Organization/kari"]


async def test_system_search_without_type_searches_every_type(people: httpx.AsyncClient) -> None:
    bundle = await search(people, "/", {"_id": "kari,obs"})
    assert sorted(keys(bundle)) == ["Observation/obs", "Organization/kari", "Patient/kari"]


async def test_system_search_sorted_and_paged(people: httpx.AsyncClient) -> None:
    first = await search(people, "/", {"_type": "Patient,Organization", "_sort": "-_id", "_count": "2"})
    assert [k.split("/")[1] for k in keys(first)][:1] == ["ola"]
    found = keys(first)
    bundle = first
    while (next_url := next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)) is not None:
        assert next_url.startswith(f"{BASE}?") or next_url.startswith(f"{BASE}/?")
        bundle = await search(people, next_url)
        found += keys(bundle)
    assert sorted(found) == ["Organization/helse-nord", "Organization/kari", "Patient/kari", "Patient/ola"]


async def test_entries_are_the_stored_bytes(people: httpx.AsyncClient) -> None:
    response = await get(people, "Patient", {"_id": "kari"})
    direct = await people.get("/Patient/kari")
    (entry,) = entries(response.json())
    assert entry["resource"] == direct.json()
    assert entry["fullUrl"] == f"{BASE}/Patient/kari"
    # Spliced in as stored, byte for byte.
    assert direct.content in response.content


async def test_search_inside_a_batch(people: httpx.AsyncClient) -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient?given=ola"}},
            {
                "request": {
                    "method": "GET",
                    "url": "Observation?subject:Patient.given=kari&_include=Observation:subject",
                }
            },
        ],
    }
    response = await people.post("/", content=orjson.dumps(batch), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    first, second = (e["resource"] for e in response.json()["entry"])
    assert first["type"] == "searchset"
    assert ids(first) == ["ola"]
    assert ids(second) == ["obs"]
    assert ids(second, "include") == ["kari"]


async def test_search_inside_a_transaction_sees_its_writes(people: httpx.AsyncClient) -> None:
    new = {k: v for k, v in patient("x", family="Gamma").items() if k != "id"}
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": "Patient?family=gamma"}},
            {
                "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
                "resource": new,
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = await people.post("/", content=orjson.dumps(transaction), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    found, created = response.json()["entry"]
    assert created["response"]["status"].startswith("201")
    # GETs run after the writes of a transaction (R4 3.1.0.11.2).
    assert found["resource"]["total"] == 1
    assert found["resource"]["entry"][0]["resource"]["name"][0]["family"] == "Gamma"
