"""Number, quantity and uri search (both databases)."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir.search.helpers import BODY_WEIGHT, UCUM, observation, patient, put_all, quantity, search_ids


def risk(res_id: str, probability: float | None) -> dict[str, object]:
    body: dict[str, object] = {
        "resourceType": "RiskAssessment",
        "id": res_id,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
    }
    if probability is not None:
        body["prediction"] = [{"probabilityDecimal": probability}]
    return body


@pytest.fixture
async def risks(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        risk("r100", 100),
        risk("r100-2", 100.2),
        risk("r99-6", 99.6),
        risk("r99-999", 99.999),
        risk("r0-25", 0.25),
        risk("none", None),
    )
    return client


async def test_number_equality_uses_the_precision_of_the_search_value(risks: httpx.AsyncClient) -> None:
    expected = {
        "100": {"r100", "r100-2", "r99-6", "r99-999"},  # [99.5, 100.5]
        "100.0": {"r100", "r99-999"},  # [99.95, 100.05]
        "100.00": {"r100", "r99-999"},  # [99.995, 100.005]
        "100.000": {"r100"},  # [99.9995, 100.0005]
        "1e2": {"r100", "r100-2", "r99-6", "r99-999"},  # one significant figure: [50, 150]
        "0.25": {"r0-25"},
        "0.3": {"r0-25"},
        "0.2": set(),
    }
    found = {value: await search_ids(risks, "RiskAssessment", {"probability": value}) for value in expected}
    assert found == expected


async def test_number_equality_range_is_half_open(client: httpx.AsyncClient) -> None:
    """ "0.2" means [0.15, 0.25) and "5.4" means [5.35, 5.45): the lower bound in, the upper one out."""
    await put_all(client, risk("b0-15", 0.15), risk("b0-25", 0.25), risk("b5-35", 5.35), risk("b5-45", 5.45))
    assert await search_ids(client, "RiskAssessment", {"probability": "0.2"}) == {"b0-15"}
    assert await search_ids(client, "RiskAssessment", {"probability": "5.4"}) == {"b5-35"}
    assert await search_ids(client, "RiskAssessment", {"probability": "ne0.2"}) == {"b0-25", "b5-35", "b5-45"}
    assert await search_ids(client, "RiskAssessment", {"probability": "5.35"}) == {"b5-35"}


async def test_number_prefixes(risks: httpx.AsyncClient) -> None:
    expected = {
        "gt100": {"r100-2"},
        "ge100": {"r100", "r100-2"},
        "lt100": {"r99-6", "r99-999", "r0-25"},
        "le100": {"r100", "r99-6", "r99-999", "r0-25"},
        "ne100": {"r0-25"},
        "ne100.00": {"r100-2", "r99-6", "r0-25"},
        "sa99.999": {"r100", "r100-2"},
        "eb99.999": {"r99-6", "r0-25"},
        "ap100": {"r100", "r100-2", "r99-6", "r99-999"},
        "ap0.25": {"r0-25"},
    }
    found = {value: await search_ids(risks, "RiskAssessment", {"probability": value}) for value in expected}
    assert found == expected


async def test_number_missing_and_or(risks: httpx.AsyncClient) -> None:
    assert await search_ids(risks, "RiskAssessment", {"probability:missing": "true"}) == {"none"}
    assert len(await search_ids(risks, "RiskAssessment", {"probability:missing": "false"})) == 5
    assert await search_ids(risks, "RiskAssessment", {"probability": "0.25,gt100"}) == {"r0-25", "r100-2"}
    assert await search_ids(risks, "RiskAssessment", [("probability", "gt99"), ("probability", "lt100")]) == {
        "r99-6",
        "r99-999",
    }


@pytest.fixture
async def quantities(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        observation("pulse", valueQuantity=quantity(72, "/min")),
        observation("mg", code=BODY_WEIGHT, valueQuantity=quantity(5.4, "mg")),
        observation("mmol", valueQuantity=quantity(5.4, "mmol/L")),
        observation("pcs", valueQuantity={"value": 5.4, "unit": "pcs"}),  # no system, no code
        observation("milligram", valueQuantity=quantity(100, "mg", unit="milligram")),
        observation("kg", code=BODY_WEIGHT, valueQuantity=quantity(80.5, "kg")),
        observation("text", valueString="ikke målt"),
    )
    return client


async def test_quantity_value_with_prefixes(quantities: httpx.AsyncClient) -> None:
    expected = {
        "5.4": {"mg", "mmol", "pcs"},
        "eq5.4": {"mg", "mmol", "pcs"},
        "5": {"mg", "mmol", "pcs"},  # [4.5, 5.5]
        "5.40": {"mg", "mmol", "pcs"},
        "gt50": {"pulse", "milligram", "kg"},
        "ge72": {"pulse", "milligram", "kg"},
        "lt72": {"mg", "mmol", "pcs"},
        "le72": {"pulse", "mg", "mmol", "pcs"},
        "ne5.4": {"pulse", "milligram", "kg"},
        "ap80": {"pulse", "kg"},  # within 10 %: [72, 88]
        "sa80.5": {"milligram"},
        "eb72": {"mg", "mmol", "pcs"},
    }
    found = {
        value: await search_ids(quantities, "Observation", {"value-quantity": value}) for value in expected
    }
    assert found == expected


async def test_quantity_with_system_and_code(quantities: httpx.AsyncClient) -> None:
    assert await search_ids(quantities, "Observation", {"value-quantity": f"5.4|{UCUM}|mg"}) == {"mg"}
    assert await search_ids(quantities, "Observation", {"value-quantity": f"5.4|{UCUM}|mmol/L"}) == {"mmol"}
    assert (
        await search_ids(quantities, "Observation", {"value-quantity": "5.4|http://example.org|mg"}) == set()
    )
    assert await search_ids(quantities, "Observation", {"value-quantity": f"gt50|{UCUM}|mg"}) == {"milligram"}
    assert await search_ids(quantities, "Observation", {"value-quantity": f"lt1000|{UCUM}|kg"}) == {"kg"}
    assert await search_ids(
        quantities, "Observation", {"value-quantity": f"5.4|{UCUM}|mg,72|{UCUM}|/min"}
    ) == {
        "mg",
        "pulse",
    }


async def test_quantity_with_unit_only(quantities: httpx.AsyncClient) -> None:
    assert await search_ids(quantities, "Observation", {"value-quantity": "5.4||mg"}) == {"mg"}
    assert await search_ids(quantities, "Observation", {"value-quantity": "5.4||pcs"}) == {"pcs"}
    assert await search_ids(quantities, "Observation", {"value-quantity": "gt1||mg"}) == {"mg", "milligram"}
    # ||unit matches the code or the stated human unit (R4 3.1.1.4.8).
    assert await search_ids(quantities, "Observation", {"value-quantity": "100||milligram"}) == {"milligram"}


async def test_quantity_missing(quantities: httpx.AsyncClient) -> None:
    assert await search_ids(quantities, "Observation", {"value-quantity:missing": "true"}) == {"text"}
    assert await search_ids(quantities, "Observation", {"value-string": "ikke"}) == {"text"}


def value_set(res_id: str, url: str) -> dict[str, object]:
    return {"resourceType": "ValueSet", "id": res_id, "url": url, "status": "active"}


@pytest.fixture
async def value_sets(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await put_all(
        client,
        value_set("kjonn", "http://helsebro.example/fhir/ValueSet/kjonn"),
        value_set("fylke", "http://helsebro.example/fhir/ValueSet/fylke"),
        value_set("gender", "http://hl7.org/fhir/ValueSet/administrative-gender"),
        {"resourceType": "ValueSet", "id": "nourl", "status": "draft"},
    )
    return client


async def test_uri_equality_is_exact(value_sets: httpx.AsyncClient) -> None:
    assert await search_ids(
        value_sets, "ValueSet", {"url": "http://helsebro.example/fhir/ValueSet/kjonn"}
    ) == {"kjonn"}
    assert await search_ids(value_sets, "ValueSet", {"url": "http://helsebro.example/fhir/ValueSet"}) == set()
    assert (
        await search_ids(value_sets, "ValueSet", {"url": "HTTP://HELSEBRO.EXAMPLE/fhir/ValueSet/kjonn"})
        == set()
    )


async def test_uri_below_and_above(value_sets: httpx.AsyncClient) -> None:
    assert await search_ids(value_sets, "ValueSet", {"url:below": "http://helsebro.example/fhir/"}) == {
        "kjonn",
        "fylke",
    }
    assert await search_ids(value_sets, "ValueSet", {"url:below": "http://hl7.org"}) == {"gender"}
    above = "http://helsebro.example/fhir/ValueSet/kjonn/_history/2"
    assert await search_ids(value_sets, "ValueSet", {"url:above": above}) == {"kjonn"}
    assert await search_ids(value_sets, "ValueSet", {"url:missing": "true"}) == {"nourl"}


async def test_uri_below_escapes_like_wildcards(client: httpx.AsyncClient) -> None:
    await put_all(
        client,
        value_set("underscore", "http://example.org/a_b/vs"),
        value_set("letter", "http://example.org/axb/vs"),
    )
    assert await search_ids(client, "ValueSet", {"url:below": "http://example.org/a_b"}) == {"underscore"}


async def test_profile_tag_and_security(client: httpx.AsyncClient) -> None:
    profile = "http://helsebro.example/fhir/StructureDefinition/test-patient"
    await put_all(
        client,
        patient(
            "tagged",
            meta={
                "profile": [profile],
                "tag": [{"system": "urn:helsebro:tag", "code": "import"}],
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
                ],
            },
        ),
        patient("plain"),
    )
    assert await search_ids(client, "Patient", {"_profile": profile}) == {"tagged"}
    assert await search_ids(client, "Patient", {"_profile:below": "http://helsebro.example/fhir/"}) == {
        "tagged"
    }
    assert await search_ids(client, "Patient", {"_profile:above": f"{profile}/extra"}) == {"tagged"}
    assert await search_ids(client, "Patient", {"_profile:missing": "true"}) == {"plain"}
    assert await search_ids(client, "Patient", {"_tag": "urn:helsebro:tag|import"}) == {"tagged"}
    assert await search_ids(client, "Patient", {"_tag": "import"}) == {"tagged"}
    assert await search_ids(client, "Patient", {"_tag:not": "import"}) == {"plain"}
    assert await search_ids(client, "Patient", {"_security": "R"}) == {"tagged"}
    confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    assert await search_ids(client, "Patient", {"_security": f"{confidentiality}|N"}) == set()
