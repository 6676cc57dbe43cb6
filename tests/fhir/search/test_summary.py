"""_total, _summary (count, true, text, data, false) and _elements (both databases)."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir.search.helpers import (
    Resource,
    entries,
    ids,
    medication_request,
    observation,
    patient,
    put_all,
    quantity,
    search,
)

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
TEXT = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Kari Nordmann</div>'}
IMPORT_TAG = {"system": "urn:helsebro:tag", "code": "import"}


@pytest.fixture
async def data(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        patient(
            "kari",
            text=TEXT,
            meta={"tag": [IMPORT_TAG]},
            gender="female",
            birthDate="1972-09-13",
            maritalStatus={"text": "Gift"},
            communication=[{"language": {"text": "norsk"}}],
        ),
        patient("ola", given="Ola"),
        patient("aase", given="Åse"),
        observation(
            "obs",
            subject="Patient/kari",
            text=TEXT,
            valueQuantity=quantity(72),
            interpretation=[{"text": "normal"}],
        ),
    )
    return client


def only(bundle: Resource) -> Resource:
    (entry,) = entries(bundle)
    resource: Resource = entry["resource"]
    return resource


async def test_total_modes(data: httpx.AsyncClient) -> None:
    assert "total" not in await search(data, "Patient", {"_total": "none"})
    assert (await search(data, "Patient", {"_total": "estimate"}))["total"] == 3
    assert (await search(data, "Patient", {"_total": "accurate"}))["total"] == 3
    assert (await search(data, "Patient"))["total"] == 3  # accurate by default
    # On a page that does not hold everything the total is still the number of all matches.
    assert (await search(data, "Patient", {"_total": "accurate", "_count": "1"}))["total"] == 3
    assert "total" not in await search(data, "Patient", {"_total": "none", "_count": "1"})
    assert (await search(data, "Patient", {"_total": "estimate", "_count": "1"}))["total"] == 3
    response = await data.get("/Patient", params={"_total": "exact"})
    assert response.status_code == 400


async def test_summary_count(data: httpx.AsyncClient) -> None:
    bundle = await search(data, "Patient", {"_summary": "count"})
    assert bundle["total"] == 3
    assert bundle.get("entry", []) == []
    bundle = await search(data, "Patient", {"_summary": "count", "given": "ola"})
    assert bundle["total"] == 1
    assert bundle.get("entry", []) == []
    # A count is a count even when _total=none was asked for too.
    assert (await search(data, "Patient", {"_summary": "count", "_total": "none"}))["total"] == 3


async def test_summary_true_keeps_summary_elements_and_tags_subsetted(data: httpx.AsyncClient) -> None:
    kari = only(await search(data, "Patient", {"_id": "kari", "_summary": "true"}))
    assert set(kari) == {"resourceType", "id", "meta", "identifier", "name", "gender", "birthDate"}
    assert kari["meta"]["tag"] == [IMPORT_TAG, SUBSETTED]
    assert kari["meta"]["versionId"] == "1"
    obs = only(await search(data, "Observation", {"_summary": "true"}))
    assert set(obs) == {"resourceType", "id", "meta", "status", "code", "subject", "valueQuantity"}


async def test_summary_text(data: httpx.AsyncClient) -> None:
    kari = only(await search(data, "Patient", {"_id": "kari", "_summary": "text"}))
    assert set(kari) == {"resourceType", "id", "meta", "text"}
    assert kari["text"] == TEXT
    assert SUBSETTED in kari["meta"]["tag"]
    # Top-level mandatory elements stay: Observation.status and Observation.code are 1..1.
    obs = only(await search(data, "Observation", {"_summary": "text"}))
    assert set(obs) == {"resourceType", "id", "meta", "text", "status", "code"}


async def test_summary_data_drops_only_the_text(data: httpx.AsyncClient) -> None:
    full = (await data.get("/Patient/kari")).json()
    kari = only(await search(data, "Patient", {"_id": "kari", "_summary": "data"}))
    assert "text" not in kari
    assert {k: v for k, v in kari.items() if k != "meta"} == {
        k: v for k, v in full.items() if k not in ("meta", "text")
    }
    assert SUBSETTED in kari["meta"]["tag"]


async def test_summary_false_is_the_whole_resource(data: httpx.AsyncClient) -> None:
    full = (await data.get("/Patient/kari")).json()
    assert only(await search(data, "Patient", {"_id": "kari", "_summary": "false"})) == full


async def test_elements(data: httpx.AsyncClient) -> None:
    kari = only(await search(data, "Patient", {"_id": "kari", "_elements": "name,gender"}))
    assert set(kari) == {"resourceType", "id", "meta", "name", "gender"}
    assert SUBSETTED in kari["meta"]["tag"]
    both = only(
        await search(data, "Patient", [("_id", "kari"), ("_elements", "name"), ("_elements", "birthDate")])
    )
    assert set(both) == {"resourceType", "id", "meta", "name", "birthDate"}
    # Mandatory elements come along.
    obs = only(await search(data, "Observation", {"_elements": "subject"}))
    assert set(obs) == {"resourceType", "id", "meta", "subject", "status", "code"}


async def test_elements_with_a_choice_type_by_its_base_name(data: httpx.AsyncClient) -> None:
    obs = only(await search(data, "Observation", {"_elements": "value"}))
    assert obs["valueQuantity"] == quantity(72)
    assert "interpretation" not in obs


async def test_summary_applies_to_included_resources(data: httpx.AsyncClient) -> None:
    params = {"_id": "obs", "_include": "Observation:subject", "_summary": "true"}
    bundle = await search(data, "Observation", params)
    (included,) = entries(bundle, "include")
    assert "maritalStatus" not in included["resource"]
    assert SUBSETTED in included["resource"]["meta"]["tag"]
    assert ids(bundle, "include") == ["kari"]


async def test_unknown_summary_mode_is_400(data: httpx.AsyncClient) -> None:
    response = await data.get("/Patient", params={"_summary": "short"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_summary_text_keeps_a_mandatory_choice_element(client: httpx.AsyncClient) -> None:
    await put_all(client, medication_request("mr", "Patient/kari", text=TEXT, note=[{"text": "Tas med mat"}]))
    mr = only(await search(client, "MedicationRequest", {"_summary": "text"}))
    assert set(mr) == {
        "resourceType",
        "id",
        "meta",
        "text",
        "status",
        "intent",
        "subject",
        "medicationCodeableConcept",
    }
