"""GET /metadata: a CapabilityStatement generated from the registry that routes requests."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from app.fhir.operations import OperationRegistry
from app.fhir.registry import Registry, r4_resource_type_names
from app.fhir.routing import allowed_methods
from app.main import create_app
from tests.conftest import BASE, make_settings
from tests.databases import TestDatabase


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


async def test_operations_are_listed_from_the_registry_that_routes_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    statement = (await client.get("/metadata")).json()
    rest = statement["rest"][0]
    assert statement["implementation"]["url"] == BASE
    system = {o["name"]: o["definition"] for o in rest["operation"]}
    assert system["export"] == "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
    assert {"reindex", "kith-message"} <= set(system)
    by_type = {
        r["type"]: {o["name"]: o["definition"] for o in r.get("operation", [])} for r in rest["resource"]
    }
    assert by_type["Patient"]["everything"] == "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    assert by_type["Group"]["export"].endswith("/group-export")
    assert {"receive", "assess", "waiting-times"} <= set(by_type["Task"])
    # Every operation the registry holds is routed, at each of its paths, with its method.
    operations: OperationRegistry = app.state.operations
    for operation in operations.operations:
        for path in operation.paths():
            concrete = path.replace("{res_type:fhirtype}", "Patient").replace("{res_id:fhirid}", "x")
            assert operation.method in allowed_methods(app, concrete), (operation.id, path)
    # And nothing is advertised that the registry does not hold.
    advertised = {o["definition"] for o in rest["operation"]} | {
        o["definition"] for r in rest["resource"] for o in r.get("operation", [])
    }
    assert advertised == {o.canonical for o in operations.operations}


async def test_the_servers_own_operation_definitions_are_served(client: httpx.AsyncClient) -> None:
    everything = await client.get("/OperationDefinition/Patient-everything")
    assert everything.status_code == 200, everything.text
    definition = everything.json()
    assert definition["resourceType"] == "OperationDefinition"
    assert (definition["code"], definition["instance"], definition["resource"]) == (
        "everything",
        True,
        ["Patient"],
    )
    assert {"_since", "_type", "_count", "return"} == {p["name"] for p in definition["parameter"]}
    reindex = (await client.get("/OperationDefinition/reindex")).json()
    assert (reindex["system"], reindex["type"], reindex["affectsState"]) == (True, True, True)
    assert (await client.get("/OperationDefinition/no-such-operation")).status_code == 404


async def test_without_a_base_url_the_implementation_is_where_the_request_went(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    app = create_app(make_settings(session_databases[backend].url, base_url=""))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://fhir.example:8080"
    ) as http:
        statement = (await http.get("/metadata")).json()
    await app.state.database.dispose()
    assert statement["implementation"]["url"] == "http://fhir.example:8080"
