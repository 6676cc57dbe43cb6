"""Composite search parameters: both components must come from the same element (both databases)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.fhir.fixtures import FHIR_JSON

LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"


def blood_pressure(res_id: str, systolic: float, diastolic: float) -> dict[str, Any]:
    def component(code: str, value: float) -> dict[str, Any]:
        quantity = {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}
        return {"code": {"coding": [{"system": LOINC, "code": code}]}, "valueQuantity": quantity}

    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "effectiveDateTime": "2026-11-01T09:30:00+01:00",
        "component": [component("8480-6", systolic), component("8462-4", diastolic)],
    }


def glucose(res_id: str, value: float, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2339-0"}], "text": "Glucose"},
        "valueQuantity": {"value": value, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
        "effectiveDateTime": when,
    }


async def ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    bundle = (await client.get("/Observation", params=params)).json()
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")


async def test_component_code_value_quantity(client: httpx.AsyncClient) -> None:
    for body in (blood_pressure("high", 150, 95), blood_pressure("normal", 120, 80)):
        await client.put(f"/Observation/{body['id']}", content=orjson.dumps(body), headers=FHIR_JSON)
    param = "component-code-value-quantity"
    assert await ids(client, **{param: f"{LOINC}|8480-6$gt140"}) == ["high"]
    assert await ids(client, **{param: "8480-6$ge120"}) == ["high", "normal"]
    # 95 belongs to the diastolic component: no systolic value of 95 exists
    assert await ids(client, **{param: "8480-6$95"}) == []
    assert await ids(client, **{param: f"8462-4$80|{UCUM}|mm[Hg]"}) == ["normal"]
    assert await ids(client, **{param: "8462-4$80||mm[Hg]"}) == ["normal"]
    assert await ids(client, **{param: f"8462-4$80|{UCUM}|kg"}) == []
    # comma: either alternative
    assert await ids(client, **{param: "8480-6$150,8462-4$80"}) == ["high", "normal"]
    # combo- covers the Observation itself and its components
    assert await ids(client, **{"combo-code-value-quantity": "8480-6$lt130"}) == ["normal"]


async def test_code_value_quantity_and_date(client: httpx.AsyncClient) -> None:
    await client.put(
        "/Observation/g1", content=orjson.dumps(glucose("g1", 5.4, "2026-10-01")), headers=FHIR_JSON
    )
    await client.put(
        "/Observation/g2", content=orjson.dumps(glucose("g2", 9.1, "2026-11-01")), headers=FHIR_JSON
    )
    assert await ids(client, **{"code-value-quantity": f"{LOINC}|2339-0$gt7"}) == ["g2"]
    assert await ids(client, **{"code-value-quantity": "2339-0$5.4"}) == ["g1"]
    missing = await ids(client, **{"code-value-quantity:missing": "true"})
    assert missing == []
    malformed = await client.get("/Observation", params={"code-value-quantity": "2339-0"})
    assert malformed.status_code == 400
