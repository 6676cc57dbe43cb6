"""OR (comma) and AND (repeated parameters), escaping, :missing on each type, _id and _lastUpdated
(both databases)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fhir.search.helpers import (
    ids,
    observation,
    organization,
    patient,
    put,
    put_all,
    quantity,
    search,
    search_ids,
)


@pytest.fixture
async def people(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        patient("kari", family="Nordmann", given="Kari", gender="female", birthDate="1972-09-13"),
        patient("ola", family="Nordmann", given="Ola", gender="male", birthDate="1980-02-01"),
        patient("aase", family="Hansen", given="Åse", gender="female", birthDate="1990-12-24"),
        patient("nameless", family="X", given=None, gender="other"),
    )
    return client


async def test_comma_is_or(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"given": "kari,ola"}) == {"kari", "ola"}
    assert await search_ids(people, "Patient", {"gender": "male,other"}) == {"ola", "nameless"}
    assert await search_ids(people, "Patient", {"birthdate": "1972,1990"}) == {"kari", "aase"}
    assert await search_ids(people, "Patient", {"_id": "kari,aase,unknown"}) == {"kari", "aase"}


async def test_repeated_parameters_are_and(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", [("family", "nordmann"), ("gender", "female")]) == {"kari"}
    assert await search_ids(people, "Patient", [("given", "kari,ola"), ("given", "ola,åse")]) == {"ola"}
    assert await search_ids(people, "Patient", [("birthdate", "ge1975"), ("birthdate", "lt1990")]) == {"ola"}
    assert await search_ids(people, "Patient", [("gender", "female"), ("gender", "male")]) == set()


async def test_escaped_comma_is_part_of_the_value(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        organization("comma", "Hansen, Olsen og Sønn AS"),
        organization("olsen", "Olsen Legesenter"),
        organization("hansen", "Hansen Fysioterapi"),
    )
    assert await search_ids(client, "Organization", {"name": r"hansen\, olsen"}) == {"comma"}
    assert await search_ids(client, "Organization", {"name": "hansen, olsen"}) == {"comma", "olsen", "hansen"}
    assert await search_ids(client, "Organization", {"name:exact": r"Hansen\, Olsen og Sønn AS"}) == {"comma"}
    assert await search_ids(client, "Organization", {"name:contains": r"n\, o"}) == {"comma"}


async def test_escaped_pipe_and_comma_in_tokens(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        patient("pipe", identifier=[{"system": "urn:test", "value": "a|b"}]),
        patient("comma", identifier=[{"system": "urn:test", "value": "a,b"}]),
        patient("a", identifier=[{"system": "urn:test", "value": "a"}]),
    )
    assert await search_ids(client, "Patient", {"identifier": r"urn:test|a\|b"}) == {"pipe"}
    assert await search_ids(client, "Patient", {"identifier": r"urn:test|a\,b"}) == {"comma"}
    assert await search_ids(client, "Patient", {"identifier": r"a\,b"}) == {"comma"}
    assert await search_ids(client, "Patient", {"identifier": "a,b"}) == {"a"}


async def test_missing_on_each_parameter_type(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        observation(
            "full",
            subject="Patient/p",
            effectiveDateTime="2021-01-01",
            valueQuantity=quantity(1),
            category=[{"coding": [{"code": "vital-signs"}]}],
        ),
        observation("bare", subject=None),
        patient("named", family="Berg"),
        {"resourceType": "Patient", "id": "unnamed", "gender": "male"},
    )
    cases = {
        ("Observation", "subject"): ({"bare"}, {"full"}),  # reference
        ("Observation", "date"): ({"bare"}, {"full"}),  # date
        ("Observation", "value-quantity"): ({"bare"}, {"full"}),  # quantity
        ("Observation", "category"): ({"bare"}, {"full"}),  # token
        ("Observation", "code"): (set(), {"full", "bare"}),  # token present on both
        ("Patient", "family"): ({"unnamed"}, {"named"}),  # string
        ("Patient", "name"): ({"unnamed"}, {"named"}),
        ("Patient", "_profile"): ({"named", "unnamed"}, set()),  # uri
        ("Patient", "_id"): (set(), {"named", "unnamed"}),
        ("Patient", "_lastUpdated"): (set(), {"named", "unnamed"}),
    }
    found = {}
    for (res_type, code), _ in cases.items():
        missing = await search_ids(client, res_type, {f"{code}:missing": "true"})
        present = await search_ids(client, res_type, {f"{code}:missing": "false"})
        found[(res_type, code)] = (missing, present)
    assert found == cases


async def test_id(people: httpx.AsyncClient) -> None:
    assert await search_ids(people, "Patient", {"_id": "kari"}) == {"kari"}
    assert await search_ids(people, "Patient", {"_id": "KARI"}) == set()
    assert await search_ids(people, "Patient", {"_id:not": "kari"}) == {"ola", "aase", "nameless"}
    assert await search_ids(people, "Patient", [("_id", "kari,ola"), ("given", "ola")]) == {"ola"}


async def test_deleted_resources_are_not_found(people: httpx.AsyncClient) -> None:
    assert (await people.delete("/Patient/ola")).status_code in (200, 204)
    assert await search_ids(people, "Patient", {"family": "nordmann"}) == {"kari"}
    assert await search_ids(people, "Patient", {"_id": "ola"}) == set()


async def test_a_resource_created_again_after_delete_is_found(people: httpx.AsyncClient) -> None:
    assert (await people.delete("/Patient/ola")).status_code in (200, 204)
    await put(people, patient("ola", family="Igjen", given="Ola"))
    assert await search_ids(people, "Patient", {"family": "igjen"}) == {"ola"}
    assert await search_ids(people, "Patient", {"family": "nordmann"}) == {"kari"}


async def test_updated_resources_are_reindexed(people: httpx.AsyncClient) -> None:
    await put(people, patient("ola", family="Berg", given="Ola", gender="male"))
    assert await search_ids(people, "Patient", {"family": "nordmann"}) == {"kari"}
    assert await search_ids(people, "Patient", {"family": "berg"}) == {"ola"}
    assert await search_ids(people, "Patient", {"birthdate": "1980"}) == set()


async def test_last_updated_prefixes(client: httpx.AsyncClient) -> None:
    stamps = []
    for res_id in ("first", "second", "third"):
        stored = await put(client, patient(res_id))
        stamps.append(stored["meta"]["lastUpdated"])
        await asyncio.sleep(0.003)  # distinct milliseconds
    first, second, third = stamps
    assert first < second < third
    expected = {
        f"eq{second}": {"second"},
        second: {"second"},
        f"ne{second}": {"first", "third"},
        f"gt{second}": {"third"},
        f"ge{second}": {"second", "third"},
        f"lt{second}": {"first"},
        f"le{second}": {"first", "second"},
        f"sa{second}": {"third"},
        f"eb{second}": {"first"},
        "gt2000-01-01": {"first", "second", "third"},
        "lt2000-01-01": set(),
        first[:10]: {"first", "second", "third"} if first[:10] == third[:10] else {"first"},
    }
    found = {value: await search_ids(client, "Patient", {"_lastUpdated": value}) for value in expected}
    assert found == expected
    # A range: two _lastUpdated parameters AND.
    window = [("_lastUpdated", f"gt{first}"), ("_lastUpdated", f"lt{third}")]
    assert await search_ids(client, "Patient", window) == {"second"}


async def test_search_without_parameters_returns_every_live_resource_of_the_type(
    people: httpx.AsyncClient,
) -> None:
    await put(people, organization("org", "Helse Nord"))
    bundle = await search(people, "Patient")
    assert set(ids(bundle)) == {"kari", "ola", "aase", "nameless"}
    assert bundle["total"] == 4
