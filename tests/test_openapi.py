"""The committed openapi/openapi.json must match what the app generates (run `make openapi` to refresh)."""

from __future__ import annotations

import orjson

from app.openapi import OPENAPI_PATH, render


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
                    schema = operation["responses"][code]["content"]["application/fhir+json"]["schema"]
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
