"""Reference search: Type/id, bare id, :Type, absolute URLs of this server, :identifier, :missing (both
databases)."""

from __future__ import annotations

import httpx
import pytest

from app.resources.no_basis.identifiers import FNR_SYSTEM, synthetic_fnr
from tests.conftest import BASE
from tests.fhir.search.helpers import observation, patient, put_all, search_ids

KARI_FNR = synthetic_fnr(13, 9, 1972, 101)


@pytest.fixture
async def observations(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        patient("p1"),
        patient("p2", given="Ola"),
        {"resourceType": "Group", "id": "p1", "type": "person", "actual": True},
        observation("o-p1", subject="Patient/p1"),
        observation("o-p2", subject="Patient/p2"),
        observation("o-group", subject="Group/p1"),
        observation("o-absolute", subject=f"{BASE}/Patient/p1"),
        observation("o-versioned", subject="Patient/p1/_history/1"),
        observation("o-none", subject=None),
        {
            **observation("o-identifier", subject=None),
            "subject": {"identifier": {"system": FNR_SYSTEM, "value": KARI_FNR}},
        },
    )
    return client


async def test_type_and_id(observations: httpx.AsyncClient) -> None:
    assert await search_ids(observations, "Observation", {"subject": "Patient/p1"}) == {
        "o-p1",
        "o-absolute",
        "o-versioned",
    }
    assert await search_ids(observations, "Observation", {"subject": "Patient/p2"}) == {"o-p2"}
    assert await search_ids(observations, "Observation", {"subject": "Group/p1"}) == {"o-group"}
    assert await search_ids(observations, "Observation", {"subject": "Patient/unknown"}) == set()


async def test_bare_id_matches_every_target_type(observations: httpx.AsyncClient) -> None:
    assert await search_ids(observations, "Observation", {"subject": "p1"}) == {
        "o-p1",
        "o-group",
        "o-absolute",
        "o-versioned",
    }


async def test_type_modifier(observations: httpx.AsyncClient) -> None:
    assert await search_ids(observations, "Observation", {"subject:Patient": "p1"}) == {
        "o-p1",
        "o-absolute",
        "o-versioned",
    }
    assert await search_ids(observations, "Observation", {"subject:Group": "p1"}) == {"o-group"}


async def test_patient_parameter_only_follows_patient_references(observations: httpx.AsyncClient) -> None:
    assert await search_ids(observations, "Observation", {"patient": "p1"}) == {
        "o-p1",
        "o-absolute",
        "o-versioned",
    }
    assert await search_ids(observations, "Observation", {"patient": "Group/p1"}) == set()


async def test_absolute_url_of_this_server(observations: httpx.AsyncClient) -> None:
    assert await search_ids(observations, "Observation", {"subject": f"{BASE}/Patient/p1"}) == {
        "o-p1",
        "o-absolute",
        "o-versioned",
    }


async def test_identifier_modifier(observations: httpx.AsyncClient) -> None:
    assert await search_ids(
        observations, "Observation", {"subject:identifier": f"{FNR_SYSTEM}|{KARI_FNR}"}
    ) == {"o-identifier"}
    assert await search_ids(observations, "Observation", {"subject:identifier": KARI_FNR}) == {"o-identifier"}
    assert (
        await search_ids(observations, "Observation", {"subject:identifier": f"urn:other|{KARI_FNR}"})
        == set()
    )


async def test_missing(observations: httpx.AsyncClient) -> None:
    present = await search_ids(observations, "Observation", {"subject:missing": "false"})
    assert present >= {"o-p1", "o-p2", "o-group", "o-absolute", "o-versioned"}
    assert "o-none" not in present
    assert "o-none" in await search_ids(observations, "Observation", {"subject:missing": "true"})
    assert await search_ids(observations, "Observation", {"encounter:missing": "false"}) == set()


async def test_missing_counts_an_identifier_only_reference_as_present(
    observations: httpx.AsyncClient,
) -> None:
    """A Reference with only an identifier is present: not :missing, although it has no target."""
    assert await search_ids(observations, "Observation", {"subject:missing": "true"}) == {"o-none"}
    assert "o-identifier" in await search_ids(observations, "Observation", {"subject:missing": "false"})
    # ... and it matches no reference value.
    assert await search_ids(observations, "Observation", {"subject:Patient": "p1"}) == {
        "o-p1",
        "o-absolute",
        "o-versioned",
    }


async def test_a_reference_value_without_an_id_matches_nothing(observations: httpx.AsyncClient) -> None:
    # "Patient/" names no target; it used to become an empty OR, which SQL rendered as no condition at all.
    assert await search_ids(observations, "Observation", {"subject": "Patient/"}) == set()
    assert await search_ids(observations, "Observation", {"subject": "Patient/,Patient/p2"}) == {"o-p2"}


async def test_or_of_references(observations: httpx.AsyncClient) -> None:
    assert await search_ids(observations, "Observation", {"subject": "Patient/p2,Group/p1"}) == {
        "o-p2",
        "o-group",
    }
    assert await search_ids(observations, "Observation", {"subject": "p2,Group/p1"}) == {"o-p2", "o-group"}


async def test_reference_to_another_server_is_not_a_local_reference(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        patient("p1"),
        observation("local", subject="Patient/p1"),
        observation("remote", subject="http://other.example/fhir/Patient/p1"),
    )
    assert await search_ids(client, "Observation", {"subject": "Patient/p1"}) == {"local"}
    assert await search_ids(client, "Patient/p1/Observation") == {"local"}
    assert await search_ids(client, "Observation", {"subject": "http://other.example/fhir/Patient/p1"}) == {
        "remote"
    }
