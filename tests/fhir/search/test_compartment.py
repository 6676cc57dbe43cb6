"""Patient compartment search (/Patient/{id}/{type}) and Patient/{id}/$everything (both databases)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import BASE
from tests.fhir.search.helpers import (
    Resource,
    condition,
    encounter,
    keys,
    link,
    medication_request,
    observation,
    organization,
    patient,
    put,
    put_all,
    require_link,
    search,
    search_ids,
)

KARI_EVERYTHING = {
    "Patient/kari",
    "Condition/c-kari-1",
    "Condition/c-kari-2",
    "Condition/c-asserted-by-kari",
    "Observation/o-kari",
    "Encounter/e-kari",
    "MedicationRequest/mr-kari",
}


@pytest.fixture
async def records(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        organization("org", "Helse Nord"),
        patient("kari", managingOrganization={"reference": "Organization/org"}),
        patient("ola", given="Ola"),
        condition("c-kari-1", "Patient/kari", code="44054006", text="Diabetes"),
        condition("c-kari-2", "Patient/kari", code="195967001", text="Astma"),
        condition("c-ola", "Patient/ola", code="44054006", text="Diabetes"),
        # Ola's condition, but asserted by Kari: in Kari's compartment through Condition.asserter.
        {**condition("c-asserted-by-kari", "Patient/ola"), "asserter": {"reference": "Patient/kari"}},
        observation("o-kari", subject="Patient/kari"),
        observation("o-ola", subject="Patient/ola"),
        encounter("e-kari", "Patient/kari"),
        medication_request("mr-kari", "Patient/kari"),
        medication_request("mr-ola", "Patient/ola"),
    )
    return client


async def test_compartment_search(records: httpx.AsyncClient) -> None:
    assert await search_ids(records, "Patient/kari/Condition") == {
        "c-kari-1",
        "c-kari-2",
        "c-asserted-by-kari",
    }
    assert await search_ids(records, "Patient/ola/Condition") == {"c-ola", "c-asserted-by-kari"}
    assert await search_ids(records, "Patient/kari/Observation") == {"o-kari"}
    assert await search_ids(records, "Patient/kari/Patient") == {"kari"}
    assert await search_ids(records, "Patient/nobody/Condition") == set()


async def test_compartment_search_with_parameters(records: httpx.AsyncClient) -> None:
    assert await search_ids(records, "Patient/kari/Condition", {"code": "44054006"}) == {
        "c-kari-1",
        "c-asserted-by-kari",
    }
    assert await search_ids(records, "Patient/ola/Condition", {"code:text": "astma"}) == set()
    bundle = await search(records, "Patient/kari/Condition", {"_count": "1", "_sort": "_id"})
    assert bundle["total"] == 3
    assert require_link(bundle, "self").startswith(f"{BASE}/Patient/kari/Condition?")
    next_page = await search(records, require_link(bundle, "next"))
    assert keys(next_page) == ["Condition/c-kari-1"]


async def test_type_outside_the_compartment_is_404(records: httpx.AsyncClient) -> None:
    response = await records.get("/Patient/kari/Organization")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_everything(records: httpx.AsyncClient) -> None:
    bundle = await search(records, "Patient/kari/$everything")
    assert set(keys(bundle)) == KARI_EVERYTHING
    assert bundle["total"] == len(KARI_EVERYTHING)


async def test_everything_of_an_unknown_or_deleted_patient_is_404(records: httpx.AsyncClient) -> None:
    assert (await records.get("/Patient/nobody/$everything")).status_code == 404
    assert (await records.delete("/Patient/ola")).status_code in (200, 204)
    assert (await records.get("/Patient/ola/$everything")).status_code == 404


async def test_everything_with_type(records: httpx.AsyncClient) -> None:
    bundle = await search(records, "Patient/kari/$everything", {"_type": "Condition,Observation"})
    assert set(keys(bundle)) == {
        "Condition/c-kari-1",
        "Condition/c-kari-2",
        "Condition/c-asserted-by-kari",
        "Observation/o-kari",
    }
    bundle = await search(records, "Patient/kari/$everything", {"_type": "Patient,Organization"})
    assert keys(bundle) == ["Patient/kari"]  # Organization is not in the compartment


async def test_everything_since(records: httpx.AsyncClient) -> None:
    await asyncio.sleep(0.005)
    changed = await put(
        records, condition("c-kari-2", "Patient/kari", code="195967001", text="Astma bronkiale")
    )
    await put(records, observation("o-ola", subject="Patient/ola", status="amended"))
    bundle = await search(records, "Patient/kari/$everything", {"_since": changed["meta"]["lastUpdated"]})
    assert keys(bundle) == ["Condition/c-kari-2"]


async def walk_keys(client: httpx.AsyncClient, first: Resource) -> list[str]:
    found = keys(first)
    bundle = first
    while (next_url := link(bundle, "next")) is not None:
        bundle = await search(client, next_url)
        found += keys(bundle)
        assert len(found) < 100
    return found


async def test_everything_paging_visits_everything_once(records: httpx.AsyncClient) -> None:
    first = await search(records, "Patient/kari/$everything", {"_count": "2"})
    assert len(keys(first)) == 2
    assert first["total"] == len(KARI_EVERYTHING)
    assert require_link(first, "next").startswith(f"{BASE}/Patient/kari/$everything?")
    found = await walk_keys(records, first)
    assert sorted(found) == sorted(KARI_EVERYTHING)


async def test_everything_paging_keeps_the_type_filter(records: httpx.AsyncClient) -> None:
    first = await search(records, "Patient/kari/$everything", {"_type": "Condition", "_count": "2"})
    found = await walk_keys(records, first)
    assert sorted(found) == ["Condition/c-asserted-by-kari", "Condition/c-kari-1", "Condition/c-kari-2"]


async def test_everything_paging_keeps_since(records: httpx.AsyncClient) -> None:
    await asyncio.sleep(0.005)
    first_change = await put(
        records, condition("c-kari-1", "Patient/kari", code="44054006", text="Diabetes type 2")
    )
    await put(records, condition("c-kari-2", "Patient/kari", code="195967001", text="Astma bronkiale"))
    await put(records, observation("o-kari", subject="Patient/kari", status="amended"))
    since = first_change["meta"]["lastUpdated"]
    first = await search(records, "Patient/kari/$everything", {"_since": since, "_count": "2"})
    found = await walk_keys(records, first)
    assert sorted(found) == ["Condition/c-kari-1", "Condition/c-kari-2", "Observation/o-kari"]
