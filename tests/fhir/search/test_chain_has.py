"""Chained parameters (one and several levels, with and without a type) and reverse chaining with _has,
also nested (both databases)."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir.search.helpers import (
    BODY_WEIGHT,
    observation,
    organization,
    patient,
    practitioner,
    practitioner_role,
    put_all,
    search_ids,
)


@pytest.fixture
async def world(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        practitioner("doc-berg", "Berg"),
        practitioner("doc-dahl", "Dahl"),
        practitioner_role("role-berg", "doc-berg"),
        organization("helse-nord", "Helse Nord"),
        patient(
            "kari",
            given="Kari",
            birthDate="1972-09-13",
            generalPractitioner=[{"reference": "PractitionerRole/role-berg"}],
        ),
        patient(
            "ola",
            given="Ola",
            birthDate="1980-01-01",
            generalPractitioner=[{"reference": "Practitioner/doc-dahl"}],
        ),
        patient(
            "aase",
            family="Hansen",
            given="Åse",
            birthDate="1990-01-01",
            generalPractitioner=[{"reference": "Organization/helse-nord"}],
        ),
        {"resourceType": "Location", "id": "room", "name": "Karirommet"},
        observation("o-kari", subject="Patient/kari"),
        observation("o-kari-weight", subject="Patient/kari", code=BODY_WEIGHT, status="preliminary"),
        observation("o-ola", subject="Patient/ola"),
        observation("o-aase", subject="Patient/aase", code=BODY_WEIGHT),
        observation("o-room", subject="Location/room"),
    )
    return client


async def test_one_level_chain_with_type(world: httpx.AsyncClient) -> None:
    assert await search_ids(world, "Observation", {"subject:Patient.name": "kari"}) == {
        "o-kari",
        "o-kari-weight",
    }
    assert await search_ids(world, "Observation", {"subject:Patient.birthdate": "ge1980"}) == {
        "o-ola",
        "o-aase",
    }
    assert await search_ids(world, "Observation", {"patient.given": "åse"}) == {"o-aase"}


async def test_one_level_chain_over_every_target_type(world: httpx.AsyncClient) -> None:
    # subject may be a Patient or a Location (both have `name`).
    assert await search_ids(world, "Observation", {"subject.name": "kari"}) == {
        "o-kari",
        "o-kari-weight",
        "o-room",
    }
    assert await search_ids(world, "Observation", {"subject:Location.name": "kari"}) == {"o-room"}


async def test_chain_with_or_and_and(world: httpx.AsyncClient) -> None:
    assert await search_ids(world, "Observation", {"subject:Patient.given": "kari,ola"}) == {
        "o-kari",
        "o-kari-weight",
        "o-ola",
    }
    params = [("subject:Patient.given", "kari,ola"), ("code", BODY_WEIGHT["code"])]
    assert await search_ids(world, "Observation", params) == {"o-kari-weight"}
    both = [("subject:Patient.family", "nordmann"), ("subject:Patient.birthdate", "1980")]
    assert await search_ids(world, "Observation", both) == {"o-ola"}


async def test_multi_level_chain(world: httpx.AsyncClient) -> None:
    three_levels = "subject:Patient.general-practitioner:PractitionerRole.practitioner.name"
    assert await search_ids(world, "Observation", {three_levels: "berg"}) == {"o-kari", "o-kari-weight"}
    assert await search_ids(world, "Observation", {three_levels: "dahl"}) == set()
    # Without a type the chain tries every target of general-practitioner that has `name`.
    assert await search_ids(world, "Observation", {"subject:Patient.general-practitioner.name": "dahl"}) == {
        "o-ola"
    }
    assert await search_ids(world, "Observation", {"subject:Patient.general-practitioner.name": "helse"}) == {
        "o-aase"
    }
    assert await search_ids(
        world, "Patient", {"general-practitioner:PractitionerRole.practitioner.family": "berg"}
    ) == {"kari"}


async def test_chain_ending_in_a_reference_or_token(world: httpx.AsyncClient) -> None:
    assert await search_ids(
        world, "Observation", {"subject.general-practitioner": "Practitioner/doc-dahl"}
    ) == {"o-ola"}
    assert await search_ids(world, "Observation", {"subject:Patient.general-practitioner": "role-berg"}) == {
        "o-kari",
        "o-kari-weight",
    }
    assert await search_ids(world, "Observation", {"subject:Patient._id": "aase"}) == {"o-aase"}
    assert await search_ids(world, "Observation", {"subject:Patient.gender:missing": "true"}) == {
        "o-kari",
        "o-kari-weight",
        "o-ola",
        "o-aase",
    }


async def test_chain_ignores_deleted_targets(world: httpx.AsyncClient) -> None:
    assert (await world.delete("/Patient/ola")).status_code in (200, 204)
    assert await search_ids(world, "Observation", {"subject:Patient.given": "ola"}) == set()
    # The plain reference is still indexed on the Observation.
    assert await search_ids(world, "Observation", {"subject": "Patient/ola"}) == {"o-ola"}


async def test_has(world: httpx.AsyncClient) -> None:
    assert await search_ids(world, "Patient", {"_has:Observation:patient:code": BODY_WEIGHT["code"]}) == {
        "kari",
        "aase",
    }
    assert await search_ids(world, "Patient", {"_has:Observation:subject:status": "preliminary"}) == {"kari"}
    assert await search_ids(world, "Patient", {"_has:Observation:subject:status": "cancelled"}) == set()
    assert await search_ids(world, "Location", {"_has:Observation:subject:code": "8867-4"}) == {"room"}
    # _has and a normal parameter AND.
    params = [("_has:Observation:patient:code", BODY_WEIGHT["code"]), ("given", "åse")]
    assert await search_ids(world, "Patient", params) == {"aase"}
    # OR inside _has.
    assert await search_ids(world, "Patient", {"_has:Observation:patient:status": "preliminary,final"}) == {
        "kari",
        "ola",
        "aase",
    }


async def test_has_with_a_chained_inner_parameter(world: httpx.AsyncClient) -> None:
    assert await search_ids(
        world, "Practitioner", {"_has:PractitionerRole:practitioner:_id": "role-berg"}
    ) == {"doc-berg"}
    assert await search_ids(world, "Patient", {"_has:Observation:patient:subject:Patient.given": "ola"}) == {
        "ola"
    }


async def test_nested_has(world: httpx.AsyncClient) -> None:
    # Practitioners with a role that is the general practitioner of a patient called Kari.
    nested = "_has:PractitionerRole:practitioner:_has:Patient:general-practitioner:given"
    assert await search_ids(world, "Practitioner", {nested: "kari"}) == {"doc-berg"}
    assert await search_ids(world, "Practitioner", {nested: "ola"}) == set()


async def test_has_ignores_deleted_sources(world: httpx.AsyncClient) -> None:
    assert (await world.delete("/Observation/o-aase")).status_code in (200, 204)
    assert await search_ids(world, "Patient", {"_has:Observation:patient:code": BODY_WEIGHT["code"]}) == {
        "kari"
    }
