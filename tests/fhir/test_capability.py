"""GET /metadata: a CapabilityStatement generated from the registry that routes requests."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from app.fhir.registry import Registry, r4_resource_type_names


async def test_metadata_is_an_r4_capability_statement(client: httpx.AsyncClient) -> None:
    response = await client.get("/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    rest = statement["rest"][0]
    assert rest["mode"] == "server"
    assert {"code": "history-system"} in rest["interaction"]


async def test_metadata_lists_exactly_the_routed_types(app: FastAPI, client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    advertised = {r["type"] for r in statement["rest"][0]["resource"]}
    registry: Registry = app.state.fhir.registry
    assert advertised == set(registry.types)
    assert "Patient" in advertised
    assert "Observation" in advertised
    assert "MedicinalProduct" not in advertised  # R4 type without an R4B model
    assert "OperationOutcome" not in advertised  # never stored
    assert advertised <= set(r4_resource_type_names())
    # every advertised type is really served
    for name in ("Patient", "Encounter", "Task", "ServiceRequest", "DocumentReference"):
        assert (await client.get(f"/{name}/nothing")).status_code == 404
        assert (await client.get(f"/{name}/_history")).status_code == 200


async def test_patient_capabilities(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert codes >= {"read", "vread", "update", "delete", "create", "history-instance", "history-type"}
    assert patient["versioning"] == "versioned-update"
    assert patient["conditionalCreate"] is True
    assert patient["conditionalDelete"] == "single"
    assert {"_id", "identifier"} <= {p["name"] for p in patient["searchParam"]}


def test_registry_covers_the_r4_types_with_r4b_models() -> None:
    registry = Registry.standard()
    assert len(registry.types) >= 120
    assert "identifier" in registry.types["Patient"].search_params
    assert "identifier" not in registry.types["Binary"].search_params
