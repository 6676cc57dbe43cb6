"""The committed openapi/openapi.json must match what the app generates (run `make openapi` to refresh)."""

from __future__ import annotations

import orjson

from app.openapi import DOCUMENTED_TYPES, OPENAPI_PATH, render


def test_openapi_document_has_not_drifted() -> None:
    assert OPENAPI_PATH.exists(), "openapi/openapi.json is missing: run `make openapi`"
    assert OPENAPI_PATH.read_bytes() == render(), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def test_openapi_never_advertises_fastapi_validation_errors() -> None:
    text = render().decode()
    assert "HTTPValidationError" not in text
    assert "OperationOutcome" in text
    document = orjson.loads(text)
    for methods in document["paths"].values():
        for operation in methods.values():
            for code in ("422", "400", "404"):
                if code in operation["responses"]:
                    assert operation["responses"][code] == {"$ref": f"#/components/responses/Error{code}"}
    for response in document["components"]["responses"].values():
        schema = response["content"]["application/fhir+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/OperationOutcome"}


def test_every_operation_but_the_public_ones_needs_a_bearer_token() -> None:
    document = orjson.loads(render())
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    metadata = document["paths"]["/metadata"]["get"]
    assert metadata["security"] == []
    assert "401" not in metadata["responses"]
    read = document["paths"]["/{res_type}/{res_id}"]["get"]
    assert {"401", "403", "404"} <= set(read["responses"])
    assert "422" not in read["responses"]
    assert "422" in document["paths"]["/{res_type}"]["post"]["responses"]


def test_the_domain_types_have_paths_of_their_own_with_their_search_parameters() -> None:
    document = orjson.loads(render())
    paths = document["paths"]
    for name in DOCUMENTED_TYPES:
        for path in (f"/{name}", f"/{name}/{{res_id}}", f"/{name}/_history", f"/{name}/{{res_id}}/_history"):
            assert path in paths, path
        read = paths[f"/{name}/{{res_id}}"]["get"]
        assert read["tags"] == [name]
        assert "res_type" not in {p["name"] for p in read["parameters"]}
        assert read["responses"]["200"]["content"]["application/fhir+json"]["schema"] == {
            "$ref": f"#/components/schemas/{name}"
        }
        assert document["components"]["schemas"][name]["properties"]["resourceType"]["const"] == name
    search = {p["name"] for p in paths["/Patient"]["get"]["parameters"]}
    assert {"identifier", "name", "birthdate", "_count", "_include"} <= search
    assert {"subject", "code", "date", "value-quantity"} <= {
        p["name"] for p in paths["/Observation"]["get"]["parameters"]
    }
    operation_ids = [o["operationId"] for methods in paths.values() for o in methods.values()]
    assert len(operation_ids) == len(set(operation_ids))
    # Every other type is still served, through the generic paths.
    assert "/{res_type}/{res_id}" in paths


def test_every_operation_documents_its_success() -> None:
    # schemathesis found the registry's operations documented with errors only: a 200 was "undocumented".
    document = orjson.loads(render())
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)


def test_the_documented_types_carry_their_r4_element_schemas_and_demo_examples() -> None:
    document = orjson.loads(render())
    schemas = document["components"]["schemas"]
    patient = schemas["Patient"]
    assert patient["additionalProperties"] is False
    assert patient["properties"]["gender"]["enum"] == ["female", "male", "other", "unknown"]
    assert patient["properties"]["contact"]["items"] == {"$ref": "#/components/schemas/Patient_Contact"}
    # Every schema the document refers to is in it; contained and bundled resources stay free-form.
    text = orjson.dumps(document).decode()
    for name in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert name in schemas, name
    assert schemas["Resource"]["additionalProperties"] is True
    create = document["paths"]["/Patient"]["post"]["requestBody"]["content"]["application/fhir+json"]
    assert create["example"]["resourceType"] == "Patient"
    assert create["example"]["identifier"][0]["system"] == "urn:oid:2.16.578.1.12.4.1.4.1"  # a fødselsnummer
    read = document["paths"]["/Observation/{res_id}"]["get"]
    assert (
        read["responses"]["200"]["content"]["application/fhir+json"]["example"]["resourceType"]
        == "Observation"
    )
    (res_id,) = [p for p in read["parameters"] if p["name"] == "res_id"]
    assert res_id["example"] == "blodtrykk-oyvind"  # the demo resource: "Try it out" reads it
    delete = document["paths"]["/Observation/{res_id}"]["delete"]
    assert all("example" not in p for p in delete["parameters"])  # never the demo data's


def test_operations_document_their_inputs_from_the_registry() -> None:
    paths = orjson.loads(render())["paths"]
    everything = {p["name"] for p in paths["/Patient/{res_id}/$everything"]["get"]["parameters"]}
    assert {"res_id", "_since", "_type", "_count", "_cursor"} <= everything
    waiting = [p["name"] for p in paths["/Task/$waiting-times"]["get"]["parameters"]]
    assert sorted(waiting) == sorted(set(waiting)) == ["owner", "received-from", "received-to", "today"]
    assess = paths["/Task/{res_id}/$assess"]["post"]["requestBody"]
    assert assess["required"] is True
    assert assess["content"]["application/fhir+json"]["schema"] == {"$ref": "#/components/schemas/Parameters"}
    assert "`decision` (code, 1..1)" in assess["description"]


def test_a_patch_body_is_a_json_patch_or_parameters_not_the_resource() -> None:
    paths = orjson.loads(render())["paths"]
    for path in ("/{res_type}/{res_id}", "/Patient/{res_id}"):
        content = paths[path]["patch"]["requestBody"]["content"]
        assert content["application/json-patch+json"]["schema"]["type"] == "array"
        assert content["application/fhir+json"]["schema"] == {"$ref": "#/components/schemas/Parameters"}


def test_each_error_response_shows_the_issue_code_the_server_answers_with() -> None:
    responses = orjson.loads(render())["components"]["responses"]
    examples = {code: r["content"]["application/fhir+json"]["example"] for code, r in responses.items()}
    assert examples["Error404"]["issue"][0]["code"] == "not-found"
    assert examples["Error401"]["issue"][0]["code"] == "login"
    assert examples["Error412"]["issue"][0]["code"] == "conflict"
    assert all(e["resourceType"] == "OperationOutcome" for e in examples.values())
