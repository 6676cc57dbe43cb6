"""_sort: ascending and descending on string, date, token, number, _id and _lastUpdated; several keys;
resources without the sort key come last (both databases)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fhir.search.helpers import ids, medication_request, patient, put, put_all, search


@pytest.fixture
async def people(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        patient("p-c", family="Dahl", given="Kari", birthDate="1980-01-01", gender="female"),
        patient("p-a", family="Berg", given="Ola", birthDate="1972-09-13", gender="male"),
        patient("p-d", family="Moen", given="Anne", birthDate="1990-06-01", gender="female"),
        patient("p-b", family="Berg", given="Anne", birthDate="1965-03-03", gender="other"),
        patient("p-e", family="Olsen", given="Per", gender="male"),  # no birthDate
        {"resourceType": "Patient", "id": "p-f", "birthDate": "1999-01-01"},  # no name, no gender
    )
    return client


async def sorted_ids(client: httpx.AsyncClient, sort: str, **params: str) -> list[str]:
    return ids(await search(client, "Patient", {"_sort": sort, **params}))


async def test_sort_by_string(people: httpx.AsyncClient) -> None:
    ascending = await sorted_ids(people, "family")
    assert set(ascending[:2]) == {"p-a", "p-b"}  # Berg twice: their order is the tie-breaker's
    assert ascending[2:] == ["p-c", "p-d", "p-e", "p-f"]  # Dahl, Moen, Olsen, then no family name
    descending = await sorted_ids(people, "-family")
    assert descending[:3] == ["p-e", "p-d", "p-c"]
    assert set(descending[3:5]) == {"p-a", "p-b"}
    assert descending[-1] == "p-f"  # missing sorts last in both directions


async def test_sort_by_string_is_case_insensitive(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        patient("upper", family="BERG"),
        patient("lower", family="aas"),
        patient("mixed", family="Carl"),
    )
    assert await sorted_ids(client, "family") == ["lower", "upper", "mixed"]


async def test_sort_follows_the_norwegian_alphabet(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        patient("aa", family="Åsheim"),
        patient("oe", family="Ødegård"),
        patient("ae", family="Ærø"),
        patient("z", family="Zahl"),
    )
    assert await sorted_ids(client, "family") == ["z", "ae", "oe", "aa"]


async def test_sort_by_several_keys(people: httpx.AsyncClient) -> None:
    assert await sorted_ids(people, "family,given") == ["p-b", "p-a", "p-c", "p-d", "p-e", "p-f"]
    assert await sorted_ids(people, "family,-given") == ["p-a", "p-b", "p-c", "p-d", "p-e", "p-f"]
    assert await sorted_ids(people, "gender,-birthdate") == ["p-d", "p-c", "p-a", "p-e", "p-b", "p-f"]


async def test_sort_by_date(people: httpx.AsyncClient) -> None:
    assert await sorted_ids(people, "birthdate") == ["p-b", "p-a", "p-c", "p-d", "p-f", "p-e"]
    assert await sorted_ids(people, "-birthdate") == ["p-f", "p-d", "p-c", "p-a", "p-b", "p-e"]


async def test_sort_by_token(people: httpx.AsyncClient) -> None:
    by_gender = await sorted_ids(people, "gender")
    assert set(by_gender[:2]) == {"p-c", "p-d"}  # female
    assert set(by_gender[2:4]) == {"p-a", "p-e"}  # male
    assert by_gender[4:] == ["p-b", "p-f"]  # other, then no gender
    by_gender_desc = await sorted_ids(people, "-gender")
    assert by_gender_desc[0] == "p-b"
    assert by_gender_desc[-1] == "p-f"


async def test_sort_by_id(people: httpx.AsyncClient) -> None:
    assert await sorted_ids(people, "_id") == ["p-a", "p-b", "p-c", "p-d", "p-e", "p-f"]
    assert await sorted_ids(people, "-_id") == ["p-f", "p-e", "p-d", "p-c", "p-b", "p-a"]


async def test_sort_by_last_updated(client: httpx.AsyncClient) -> None:
    for res_id in ("z", "x", "y"):
        await put(client, patient(res_id))
        await asyncio.sleep(0.003)
    await put(client, patient("z", family="Endret"))  # z becomes the newest
    assert await sorted_ids(client, "_lastUpdated") == ["x", "y", "z"]
    assert await sorted_ids(client, "-_lastUpdated") == ["z", "y", "x"]


async def test_sort_by_number(client: httpx.AsyncClient) -> None:
    def risk(res_id: str, probability: float | None) -> dict[str, object]:
        body: dict[str, object] = {
            "resourceType": "RiskAssessment",
            "id": res_id,
            "status": "final",
            "subject": {"reference": "Patient/p"},
        }
        if probability is not None:
            body["prediction"] = [{"probabilityDecimal": probability}]
        return body

    await put_all(
        client, risk("mid", 50), risk("none", None), risk("low", 0.5), risk("high", 99), risk("neg", -1)
    )
    bundle = await search(client, "RiskAssessment", {"_sort": "probability"})
    assert ids(bundle) == ["neg", "low", "mid", "high", "none"]
    bundle = await search(client, "RiskAssessment", {"_sort": "-probability"})
    assert ids(bundle) == ["high", "mid", "low", "neg", "none"]


async def test_sort_combined_with_a_filter(people: httpx.AsyncClient) -> None:
    assert await sorted_ids(people, "-birthdate", gender="female") == ["p-d", "p-c"]


async def test_sort_by_unknown_parameter_is_400(people: httpx.AsyncClient) -> None:
    response = await people.get("/Patient", params={"_sort": "shoe-size"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_sort_by_reference_and_uri(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        medication_request("m1", "Patient/b"),
        medication_request("m2", "Patient/a"),
        {**medication_request("m3", "Patient/a"), "subject": {"display": "Ukjent"}},
        {"resourceType": "ValueSet", "id": "v1", "url": "http://b.example/vs", "status": "active"},
        {"resourceType": "ValueSet", "id": "v2", "url": "http://a.example/vs", "status": "active"},
        {"resourceType": "ValueSet", "id": "v3", "status": "active"},
    )
    assert ids(await search(client, "MedicationRequest", {"_sort": "subject"})) == ["m2", "m1", "m3"]
    assert ids(await search(client, "MedicationRequest", {"_sort": "-subject"})) == ["m1", "m2", "m3"]
    assert ids(await search(client, "ValueSet", {"_sort": "url"})) == ["v2", "v1", "v3"]
    assert ids(await search(client, "ValueSet", {"_sort": "-url"})) == ["v1", "v2", "v3"]
