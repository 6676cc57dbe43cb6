"""token:in / token:not-in against value sets held by the server (both databases)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.fhir.fixtures import FHIR_JSON

ICD10 = "urn:oid:2.16.578.1.12.4.1.1.7110"
ICPC2 = "urn:oid:2.16.578.1.12.4.1.1.7170"
DIABETES_VS: dict[str, Any] = {
    "resourceType": "ValueSet",
    "id": "diabetes",
    "url": "http://helsebro.example/fhir/ValueSet/diabetes",
    "status": "active",
    "compose": {
        "include": [
            {"system": ICD10, "concept": [{"code": "E10"}, {"code": "E11"}]},
            {"system": ICPC2, "concept": [{"code": "T90"}]},
        ]
    },
}
ALL_ICPC2: dict[str, Any] = {
    "resourceType": "ValueSet",
    "id": "icpc2",
    "url": "http://helsebro.example/fhir/ValueSet/icpc2",
    "status": "active",
    "compose": {"include": [{"system": ICPC2}]},
}


def condition(res_id: str, system: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": res_id,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }


async def ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    bundle = (await client.get("/Condition", params=params)).json()
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


async def test_in_and_not_in(client: httpx.AsyncClient) -> None:
    for vs in (DIABETES_VS, ALL_ICPC2):
        await client.put(f"/ValueSet/{vs['id']}", content=orjson.dumps(vs), headers=FHIR_JSON)
    p1 = {"resourceType": "Patient", "id": "p1"}
    assert (await client.put("/Patient/p1", content=orjson.dumps(p1), headers=FHIR_JSON)).status_code == 201
    for body in (
        condition("e11", ICD10, "E11"),
        condition("t90", ICPC2, "T90"),
        condition("j06", ICD10, "J06"),
        condition("r05", ICPC2, "R05"),
    ):
        await client.put(f"/Condition/{body['id']}", content=orjson.dumps(body), headers=FHIR_JSON)
    assert await ids(client, **{"code:in": DIABETES_VS["url"]}) == ["e11", "t90"]
    assert await ids(client, **{"code:in": "ValueSet/diabetes"}) == ["e11", "t90"]
    assert await ids(client, **{"code:not-in": DIABETES_VS["url"]}) == ["j06", "r05"]
    assert await ids(client, **{"code:in": ALL_ICPC2["url"]}) == ["r05", "t90"]
    unknown = await client.get("/Condition", params={"code:in": "http://nowhere.example/ValueSet/x"})
    assert unknown.status_code == 400
