"""_include and _revinclude, with target types and :iterate (both databases)."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from app.fhir.search.includes import MAX_INCLUDED
from tests.conftest import BASE
from tests.fhir.search.helpers import (
    encounter,
    entries,
    keys,
    medication_request,
    observation,
    organization,
    patient,
    practitioner,
    practitioner_role,
    put_all,
    require_link,
    search,
)


@pytest.fixture
async def world(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        practitioner("doc-berg", "Berg"),
        practitioner_role("role-berg", "doc-berg"),
        organization("helse-nord", "Helse Nord"),
        patient(
            "kari",
            generalPractitioner=[
                {"reference": "PractitionerRole/role-berg"},
                {"reference": "Organization/helse-nord"},
            ],
            link=[{"other": {"reference": "Patient/ola"}, "type": "seealso"}],
        ),
        patient("ola", given="Ola", generalPractitioner=[{"reference": "Practitioner/doc-berg"}]),
        medication_request("mr1", "Patient/kari", requester={"reference": "Practitioner/doc-berg"}),
        medication_request("mr2", "Patient/kari"),
        medication_request("mr3", "Patient/ola"),
        encounter("enc-kari", "Patient/kari"),
        observation("obs-kari", subject="Patient/kari"),
        # Reachable from Kari only through her encounter.
        observation("obs-enc", subject="Patient/ola", encounter={"reference": "Encounter/enc-kari"}),
    )
    return client


def assert_no_duplicates(bundle: dict[str, object]) -> None:
    every = keys(bundle, "match") + keys(bundle, "include")
    assert [k for k, n in Counter(every).items() if n > 1] == []


async def test_include(world: httpx.AsyncClient) -> None:
    bundle = await search(world, "MedicationRequest", {"_id": "mr1", "_include": "MedicationRequest:subject"})
    assert keys(bundle) == ["MedicationRequest/mr1"]
    assert keys(bundle, "include") == ["Patient/kari"]
    included = entries(bundle, "include")[0]
    assert included["fullUrl"] == f"{BASE}/Patient/kari"
    assert included["search"] == {"mode": "include"}
    assert bundle["total"] == 1  # includes are not counted


async def test_include_is_not_duplicated(world: httpx.AsyncClient) -> None:
    bundle = await search(world, "MedicationRequest", {"_include": "MedicationRequest:patient"})
    assert set(keys(bundle)) == {"MedicationRequest/mr1", "MedicationRequest/mr2", "MedicationRequest/mr3"}
    assert sorted(keys(bundle, "include")) == ["Patient/kari", "Patient/ola"]  # Kari once, for two matches
    assert_no_duplicates(bundle)


async def test_include_of_a_resource_that_is_already_a_match(world: httpx.AsyncClient) -> None:
    bundle = await search(world, "Patient", {"_id": "kari,ola", "_include": "Patient:link"})
    assert set(keys(bundle)) == {"Patient/kari", "Patient/ola"}
    assert keys(bundle, "include") == []


async def test_several_includes_and_wildcard(world: httpx.AsyncClient) -> None:
    params = [
        ("_id", "mr1"),
        ("_include", "MedicationRequest:subject"),
        ("_include", "MedicationRequest:requester"),
    ]
    bundle = await search(world, "MedicationRequest", params)
    assert sorted(keys(bundle, "include")) == ["Patient/kari", "Practitioner/doc-berg"]
    bundle = await search(world, "MedicationRequest", {"_id": "mr1", "_include": "MedicationRequest:*"})
    assert sorted(keys(bundle, "include")) == ["Patient/kari", "Practitioner/doc-berg"]
    assert_no_duplicates(bundle)


async def test_include_with_target_type(world: httpx.AsyncClient) -> None:
    bundle = await search(
        world, "Patient", {"_id": "kari", "_include": "Patient:general-practitioner:Organization"}
    )
    assert keys(bundle, "include") == ["Organization/helse-nord"]
    bundle = await search(world, "Patient", {"_id": "kari", "_include": "Patient:general-practitioner"})
    assert sorted(keys(bundle, "include")) == ["Organization/helse-nord", "PractitionerRole/role-berg"]


async def test_include_iterate(world: httpx.AsyncClient) -> None:
    params = [
        ("_id", "mr2"),
        ("_include", "MedicationRequest:subject"),
        ("_include:iterate", "Patient:general-practitioner"),
        ("_include:iterate", "PractitionerRole:practitioner"),
    ]
    bundle = await search(world, "MedicationRequest", params)
    assert keys(bundle) == ["MedicationRequest/mr2"]
    assert sorted(keys(bundle, "include")) == [
        "Organization/helse-nord",
        "Patient/kari",
        "Practitioner/doc-berg",
        "PractitionerRole/role-berg",
    ]
    assert_no_duplicates(bundle)


async def test_include_without_iterate_does_not_follow_included_resources(world: httpx.AsyncClient) -> None:
    params = [
        ("_id", "mr2"),
        ("_include", "MedicationRequest:subject"),
        ("_include", "Patient:general-practitioner"),
    ]
    bundle = await search(world, "MedicationRequest", params)
    assert keys(bundle, "include") == ["Patient/kari"]


async def test_revinclude(world: httpx.AsyncClient) -> None:
    params = [
        ("_id", "kari"),
        ("_revinclude", "MedicationRequest:subject"),
        ("_revinclude", "Observation:subject"),
    ]
    bundle = await search(world, "Patient", params)
    assert keys(bundle) == ["Patient/kari"]
    assert sorted(keys(bundle, "include")) == [
        "MedicationRequest/mr1",
        "MedicationRequest/mr2",
        "Observation/obs-kari",
    ]
    assert all(e["search"]["mode"] == "include" for e in entries(bundle, "include"))


async def test_revinclude_iterate(world: httpx.AsyncClient) -> None:
    params = [
        ("_id", "kari"),
        ("_revinclude", "Encounter:subject"),
        ("_revinclude:iterate", "Observation:encounter"),
    ]
    bundle = await search(world, "Patient", params)
    assert sorted(keys(bundle, "include")) == ["Encounter/enc-kari", "Observation/obs-enc"]
    without_iterate = [
        ("_id", "kari"),
        ("_revinclude", "Encounter:subject"),
        ("_revinclude", "Observation:encounter"),
    ]
    bundle = await search(world, "Patient", without_iterate)
    assert keys(bundle, "include") == ["Encounter/enc-kari"]


async def test_include_and_revinclude_together(world: httpx.AsyncClient) -> None:
    params = [
        ("_id", "mr3"),
        ("_include", "MedicationRequest:subject"),
        ("_revinclude:iterate", "Observation:subject"),
    ]
    bundle = await search(world, "MedicationRequest", params)
    assert sorted(keys(bundle, "include")) == ["Observation/obs-enc", "Patient/ola"]
    assert_no_duplicates(bundle)


async def test_deleted_resources_are_not_included(world: httpx.AsyncClient) -> None:
    assert (await world.delete("/Patient/kari")).status_code in (200, 204)
    assert (await world.delete("/MedicationRequest/mr3")).status_code in (200, 204)
    bundle = await search(world, "MedicationRequest", {"_include": "MedicationRequest:subject"})
    assert sorted(keys(bundle)) == ["MedicationRequest/mr1", "MedicationRequest/mr2"]
    assert keys(bundle, "include") == []
    bundle = await search(world, "Patient", {"_id": "ola", "_revinclude": "MedicationRequest:subject"})
    assert keys(bundle, "include") == []


async def test_includes_belong_to_the_page(world: httpx.AsyncClient) -> None:
    params = {"_sort": "_id", "_count": "2", "_include": "MedicationRequest:subject"}
    first = await search(world, "MedicationRequest", params)
    assert keys(first) == ["MedicationRequest/mr1", "MedicationRequest/mr2"]
    assert keys(first, "include") == ["Patient/kari"]  # includes do not count against _count
    second = await search(world, require_link(first, "next"))
    assert keys(second) == ["MedicationRequest/mr3"]
    assert keys(second, "include") == ["Patient/ola"]


async def test_dangling_references_include_nothing(client: httpx.AsyncClient) -> None:
    await put_all(client, medication_request("mr", "Patient/gone"))
    bundle = await search(client, "MedicationRequest", {"_include": "MedicationRequest:subject"})
    assert keys(bundle) == ["MedicationRequest/mr"]
    assert keys(bundle, "include") == []


async def test_no_matches_no_includes(world: httpx.AsyncClient) -> None:
    bundle = await search(
        world, "MedicationRequest", {"_id": "nothing", "_include": "MedicationRequest:subject"}
    )
    assert bundle.get("entry", []) == []
    assert bundle["total"] == 0


async def test_iterate_includes_are_known_parameters(world: httpx.AsyncClient) -> None:
    params = [
        ("_id", "kari"),
        ("_include:iterate", "Patient:general-practitioner"),
        ("_revinclude:iterate", "Observation:encounter"),
    ]
    bundle = await search(world, "Patient", params, {"Prefer": "handling=strict"})
    assert entries(bundle, "outcome") == []


async def test_a_page_over_the_include_cap_says_what_it_left_out(client: httpx.AsyncClient) -> None:
    # 1,001 Observations of one patient: one more than a page includes. They were cut without a word.
    await put_all(client, patient("many"))
    batch = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(f"o{i}", subject="Patient/many"),
                "request": {"method": "PUT", "url": f"Observation/o{i}"},
            }
            for i in range(MAX_INCLUDED + 1)
        ],
    }
    assert (
        await client.post("/", json=batch, headers={"Content-Type": "application/fhir+json"})
    ).status_code == 200
    bundle = await search(client, "Patient", [("_id", "many"), ("_revinclude", "Observation:subject")])
    assert len(keys(bundle, "include")) == MAX_INCLUDED
    (outcome,) = [e["resource"] for e in entries(bundle, "outcome")]
    (issue,) = outcome["issue"]
    assert issue["code"] == "incomplete"
    assert issue["severity"] == "warning"
    assert "smaller _count" in issue["diagnostics"]
    # At the cap exactly, nothing is left out and nothing is said.
    await client.delete("/Observation/o0")
    bundle = await search(client, "Patient", [("_id", "many"), ("_revinclude", "Observation:subject")])
    assert len(keys(bundle, "include")) == MAX_INCLUDED
    assert entries(bundle, "outcome") == []


async def test_iterate_says_when_it_stops_before_the_end(client: httpx.AsyncClient) -> None:
    # A chain of Patient.link six long: :iterate follows four levels and says it stopped.
    chain = [
        patient(f"p{i}", link=[{"other": {"reference": f"Patient/p{i + 1}"}, "type": "seealso"}])
        for i in range(6)
    ]
    await put_all(client, *chain, patient("p6"))
    bundle = await search(client, "Patient", [("_id", "p0"), ("_include:iterate", "Patient:link")])
    assert sorted(keys(bundle, "include")) == ["Patient/p1", "Patient/p2", "Patient/p3", "Patient/p4"]
    (outcome,) = [e["resource"] for e in entries(bundle, "outcome")]
    assert outcome["issue"][0]["code"] == "incomplete"
    short = await search(client, "Patient", [("_id", "p3"), ("_include:iterate", "Patient:link")])
    assert sorted(keys(short, "include")) == ["Patient/p4", "Patient/p5", "Patient/p6"]
    assert entries(short, "outcome") == []
