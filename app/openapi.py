"""OpenAPI description of the FHIR REST API, and `python -m app.openapi` to write openapi/openapi.json.

FastAPI cannot see FHIR bodies and headers (routes read them from the raw request for speed), so they are
described here; FastAPI's 422 HTTPValidationError is removed because clients only ever get OperationOutcome.
A test fails when the committed document drifts from this.
"""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.config import Settings
from app.demo import demo_resources
from app.fhir.outcome import ISSUE_CODES

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
FHIR_JSON = "application/fhir+json"
# The demo pregnancy's dates follow the day it is loaded; the document's examples use a fixed day instead,
# so that the committed document does not drift from one day to the next.
EXAMPLES_DAY = date(2026, 12, 1)

_RESOURCE = {
    "type": "object",
    "description": "A FHIR R4 resource in JSON (see http://hl7.org/fhir/R4/json.html)",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
    "additionalProperties": True,
}
# The R4 schemas of resources and data types (app/fhir/schemas_generate.py builds the table from the
# standard's StructureDefinitions); the document carries those its documented types reach.
R4_SCHEMAS = Path(__file__).resolve().parent / "fhir" / "data" / "r4-schemas.json"
_SCHEMA_REF = "#/components/schemas/"
# Extension refers to every data type and each data type to Extension: with that cycle in it the document
# took a schema-driven client 105 s to load (schemathesis), against 3 s without. So an extension is
# described by its url alone; its value is checked on write by the validator, as contained resources are.
_EXTENSION = {
    "type": "object",
    "description": "An extension (http://hl7.org/fhir/R4/extensibility.html): a url and a value[x] or "
    "nested extensions",
    "required": ["url"],
    "properties": {"url": {"type": "string"}},
    "additionalProperties": True,
}


def _ref(name: str) -> dict[str, Any]:
    return {"content": {FHIR_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": kind},
        "description": description,
    }


_FORMAT = _query("_format", "Response format: json, application/json or application/fhir+json")
_PREFER = _header("Prefer", "return=minimal | return=representation (default) | return=OperationOutcome")
_IF_MATCH = _header("If-Match", 'W/"<versionId>": write only if the resource is still at that version (412)')
_CRITERIA = _query("identifier", "Conditional criteria (also _id): system|value, |value, value or system|")
_SEARCH = [
    _query("_count", "Page size", "integer"),
    _query("_sort", "Sort keys, comma-separated; '-' for descending (e.g. -date,_id)"),
    _query("_total", "none | estimate | accurate (default)"),
    _query("_summary", "true | text | data | count | false"),
    _query("_elements", "Top-level elements to return, comma-separated"),
    _query("_include", "Type:param[:targetType] (repeatable; _include:iterate too)"),
    _query("_revinclude", "Type:param[:targetType] (repeatable; _revinclude:iterate too)"),
    _query("_cursor", "Paging cursor, taken from the Bundle's links"),
    _FORMAT,
    _header("Prefer", "handling=strict: unknown parameters are an error instead of a warning"),
]
_SEARCH_RESPONSE = {"200": ("searchset Bundle", "Bundle")}
_HISTORY = [
    _query("_count", "Page size", "integer"),
    _query("_since", "Only versions written at or after this instant"),
    _query("_cursor", "Paging cursor, taken from the Bundle's next link"),
    _FORMAT,
]

# A PATCH body is a JSON Patch (RFC 6902) or a FHIRPath Patch (a Parameters resource), not the resource.
_PATCH = "Patch"
_PATCH_BODY = {
    "required": True,
    "content": {
        "application/json-patch+json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["op", "path"],
                    "properties": {
                        "op": {
                            "type": "string",
                            "enum": ["add", "remove", "replace", "move", "copy", "test"],
                        },
                        "path": {"type": "string", "description": "A JSON Pointer, e.g. /name/0/family"},
                        "value": {"description": "The value of add, replace and test"},
                        "from": {"type": "string", "description": "The source of move and copy"},
                    },
                },
            },
            "example": [{"op": "replace", "path": "/active", "value": False}],
        },
        FHIR_JSON: {"schema": {"$ref": f"{_SCHEMA_REF}Parameters"}},
    },
}

# (method, path) -> (extra parameters, request body schema or None, {status: (description, schema)})
_OPERATIONS: dict[tuple[str, str], tuple[list[dict[str, Any]], str | None, dict[str, tuple[str, str]]]] = {
    ("get", "/metadata"): ([_FORMAT], None, {"200": ("CapabilityStatement", "Resource")}),
    ("get", "/_history"): (_HISTORY, None, {"200": ("history Bundle", "Bundle")}),
    ("get", "/{res_type}/_history"): (_HISTORY, None, {"200": ("history Bundle", "Bundle")}),
    ("get", "/{res_type}/{res_id}/_history"): (_HISTORY, None, {"200": ("history Bundle", "Bundle")}),
    ("get", "/{res_type}/{res_id}/_history/{version_id}"): (
        [_FORMAT],
        None,
        {"200": ("The version", "Resource"), "410": ("That version is a deletion", "OperationOutcome")},
    ),
    ("get", "/{res_type}/{res_id}"): (
        [
            _FORMAT,
            _header("If-None-Match", 'W/"<versionId>": 304 when still current'),
            _header("If-Modified-Since", "HTTP date: 304 when not modified since"),
        ],
        None,
        {
            "200": ("The current version", "Resource"),
            "304": ("Not modified", ""),
            "410": ("Deleted", "OperationOutcome"),
        },
    ),
    ("post", "/"): (
        [_PREFER, _FORMAT],
        "Bundle",
        {"200": ("batch-response or transaction-response Bundle", "Bundle")},
    ),
    ("post", "/{res_type}"): (
        [
            _PREFER,
            _FORMAT,
            _header("If-None-Exist", "Conditional create criteria, e.g. identifier=system|value"),
        ],
        "Resource",
        {"201": ("Created", "Resource"), "200": ("Conditional create found an existing match", "Resource")},
    ),
    ("put", "/{res_type}/{res_id}"): (
        [_PREFER, _FORMAT, _IF_MATCH],
        "Resource",
        {"200": ("Updated", "Resource"), "201": ("Created (update-as-create)", "Resource")},
    ),
    ("post", "/$reindex"): (
        [],
        None,
        {"200": ("What was reindexed, and search parameters in force", "OperationOutcome")},
    ),
    ("post", "/{res_type}/$reindex"): ([], None, {"200": ("What was reindexed", "OperationOutcome")}),
    ("get", "/{res_type}"): (_SEARCH, None, _SEARCH_RESPONSE),
    ("post", "/{res_type}/_search"): (_SEARCH, None, _SEARCH_RESPONSE),
    ("get", "/"): (
        [_query("_type", "Resource types to search, comma-separated"), *_SEARCH],
        None,
        _SEARCH_RESPONSE,
    ),
    # Its other parameters come from the operation registry (_registry_inputs).
    ("get", "/Patient/{res_id}/$everything"): ([_query("_cursor", "Paging cursor")], None, _SEARCH_RESPONSE),
    ("get", "/Patient/{res_id}/{res_type}"): (_SEARCH, None, _SEARCH_RESPONSE),
    ("patch", "/{res_type}/{res_id}"): (
        [_PREFER, _FORMAT, _IF_MATCH],
        _PATCH,
        {"200": ("Patched (unchanged: same version)", "Resource"), "410": ("Deleted", "OperationOutcome")},
    ),
    ("put", "/{res_type}"): (
        [_PREFER, _FORMAT, _IF_MATCH, _CRITERIA],
        "Resource",
        {"200": ("Updated the single match", "Resource"), "201": ("Created: no match", "Resource")},
    ),
    ("delete", "/{res_type}/{res_id}"): (
        [_PREFER, _IF_MATCH],
        None,
        {"200": ("Deleted (or nothing to delete)", "OperationOutcome"), "204": ("Deleted", "")},
    ),
    ("delete", "/{res_type}"): (
        [_PREFER, _IF_MATCH, _CRITERIA],
        None,
        {
            "200": ("Deleted the single match (or nothing matched)", "OperationOutcome"),
            "204": ("Deleted", ""),
        },
    ),
}
_ERRORS = {
    "400": "Invalid request or resource",
    "401": "No bearer token, or one that is invalid or expired (WWW-Authenticate says which)",
    "403": "The token's scopes or the access policy refuse this (the refusal is audited)",
    "404": "Unknown resource type or id",
    "406": "Requested format not supported",
    "409": "Conflict with a concurrent write",
    "412": "Precondition failed (If-Match, multiple conditional matches)",
    "413": "Body too large",
    "415": "Unsupported Content-Type",
    "500": "Internal error",
}


def _error_response(status: int, description: str) -> dict[str, Any]:
    """An error's OperationOutcome, with an example in the issue code the server answers that status with
    (its own example also spares Swagger UI generating one from the schema for each of them)."""
    response = _response(description, "OperationOutcome")
    code = ISSUE_CODES.get(status, "processing")
    example = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": description}],
    }
    response["content"][FHIR_JSON]["example"] = example
    return response


def _response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, **(_ref(schema) if schema else {})}


# Writes may also break a business rule or name what does not exist (referential integrity).
_WRITE_ERRORS = {"422": "A business rule, a profile or referential integrity refuses the write"}
_WRITES = frozenset({"post", "put", "patch", "delete"})
# Authentication (app/security/authn.py): every path needs a bearer token except these.
_PUBLIC = frozenset({"/metadata"})
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A token from a trusted issuer (SMART on FHIR scopes; with `make run`, `make -s token`, "
    "or `python -m app.security.devtoken system --client-id my-tests` for a test harness)",
}


# The types the national domains and their adapters use get paths of their own, with their search
# parameters and a schema naming the type; every other type is served through the generic /{res_type}
# paths (a document with all 126 types' paths is too large for Swagger UI to be of use).
DOCUMENTED_TYPES = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "RelatedPerson",
    "Encounter",
    "EpisodeOfCare",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "Procedure",
    "Immunization",
    "Medication",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationDispense",
    "Flag",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Composition",
    "Provenance",
    "ServiceRequest",
    "Task",
    "Appointment",
    "CarePlan",
    "CareTeam",
    "Communication",
    "CommunicationRequest",
    "Consent",
    "QuestionnaireResponse",
    "Group",
    "Subscription",
    "AuditEvent",
)
# The generic paths copied for each documented type.
_TYPED_PATHS = (
    "/{res_type}",
    "/{res_type}/_search",
    "/{res_type}/_history",
    "/{res_type}/{res_id}",
    "/{res_type}/{res_id}/_history",
    "/{res_type}/{res_id}/_history/{version_id}",
)
_SEARCH_TYPES = {"number": "number", "date": "string", "token": "string", "reference": "string"}


def _typed(
    method: str,
    operation: dict[str, Any],
    name: str,
    search_params: list[dict[str, Any]],
    example: dict[str, Any] | None,
) -> dict[str, Any]:
    """A generic operation as it applies to one type: no res_type parameter, the type's schema, with the
    demo data's resource of that type as the example of its bodies."""
    own = {"$ref": f"{_SCHEMA_REF}{name}"}
    text = orjson.dumps(operation).replace(f"{_SCHEMA_REF}Resource".encode(), own["$ref"].encode())
    typed: dict[str, Any] = orjson.loads(text)
    if example is not None and method != "delete":  # the demo resource's id: "Try it out" finds it
        for parameter in typed.get("parameters", []):
            if parameter["name"] == "res_id":
                parameter["example"] = example["id"]
    bodies = [typed.get("requestBody", {}), *typed.get("responses", {}).values()]
    for media in (body.get("content", {}).get(FHIR_JSON) for body in bodies):
        if example is not None and media is not None and media.get("schema") == own:
            media["example"] = example
    typed["parameters"] = [p for p in typed.get("parameters", []) if p.get("name") != "res_type"]
    if typed.get("summary") in ("search", "search (parameters in a form body)"):
        typed["parameters"] += search_params
    typed["operationId"] = f"{typed['operationId'].split('__res_type')[0]}_{name}"
    typed["tags"] = [name]
    return typed


def _search_parameters(app: FastAPI, name: str) -> list[dict[str, Any]]:
    params = app.state.fhir.registry.types[name].search_params
    return [
        {
            "name": code,
            "in": "query",
            "required": False,
            "schema": {"type": _SEARCH_TYPES.get(param.type, "string")},
            "description": f"{param.type}: {_first_sentence(param.documentation)}".rstrip(": "),
        }
        for code, param in sorted(params.items())
    ]


def _first_sentence(text: str) -> str:
    first = text.split(". ")[0].strip()
    return first if len(first) <= 160 else first[:157] + "..."


def _add_typed_paths(app: FastAPI, doc: dict[str, Any]) -> None:
    """The documented types' own paths."""
    examples: dict[str, dict[str, Any]] = {}
    for resource in demo_resources(EXAMPLES_DAY):
        examples.setdefault(resource["resourceType"], resource)
    for name in DOCUMENTED_TYPES:
        if name not in app.state.fhir.registry.types:
            continue
        search_params = _search_parameters(app, name)
        for generic in _TYPED_PATHS:
            path = generic.replace("{res_type}", name, 1)
            doc["paths"][path] = {
                method: _typed(method, operation, name, search_params, examples.get(name))
                for method, operation in doc["paths"][generic].items()
            }


def _reachable(roots: list[str]) -> dict[str, Any]:
    """The R4 schemas of `roots` and of every type they refer to, in name order."""
    table: dict[str, Any] = orjson.loads(R4_SCHEMAS.read_bytes())
    found: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in found or name == "Resource":
            continue
        found[name] = _EXTENSION if name == "Extension" else table[name]
        pending += [ref.removeprefix(_SCHEMA_REF) for ref in _refs(table[name])]
    return dict(sorted(found.items()))


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        return [schema["$ref"]] if "$ref" in schema else [r for v in schema.values() for r in _refs(v)]
    if isinstance(schema, list):
        return [r for v in schema for r in _refs(v)]
    return []


def _own_success(operation: dict[str, Any]) -> dict[str, Any]:
    """The success of an operation described nowhere above (the operations' routes): FastAPI's own where
    it names a media type of its own (the KITH operations' XML), else a FHIR resource."""
    kept = {
        code: response
        for code, response in operation.get("responses", {}).items()
        if code.startswith("2") and set(response.get("content", {})) - {"application/json"}
    }
    return kept or {"200": _response("The operation's result", "Resource")}


def _registry_inputs(app: FastAPI) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> the input of an operation of the registry (app/fhir/operations.py)."""
    return {
        (operation.method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", path)): operation.openapi()
        for operation in app.state.operations.operations
        for path in operation.paths()
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    inputs = _registry_inputs(app)
    for path, methods in doc.get("paths", {}).items():
        for method, operation in methods.items():
            extra, body, responses = _OPERATIONS.get((method, path), ([], None, {}))
            own = inputs.get((method, path), {})
            # A handler may declare a parameter FastAPI sees too ($waiting-times): each is listed once.
            merged = [*operation.get("parameters", []), *own.get("parameters", []), *extra]
            operation["parameters"] = list({(p["in"], p["name"]): p for p in reversed(merged)}.values())[::-1]
            if "requestBody" in own:
                operation["requestBody"] = own["requestBody"]
            if body:
                operation["requestBody"] = _PATCH_BODY if body == _PATCH else {"required": True, **_ref(body)}
            errors = {**_ERRORS, **(_WRITE_ERRORS if method in _WRITES else {})}
            if path in _PUBLIC:
                operation["security"] = []
                errors = {code: d for code, d in errors.items() if code not in ("401", "403")}
            operation["responses"] = {
                **({} if responses else _own_success(operation)),
                **{code: _response(d, s) for code, (d, s) in responses.items()},
                **{code: {"$ref": f"#/components/responses/Error{code}"} for code in sorted(errors)},
            }
    _add_typed_paths(app, doc)
    named = [ref.removeprefix(_SCHEMA_REF) for ref in _refs(doc["paths"]) if ref.startswith(_SCHEMA_REF)]
    doc["components"] = {
        "schemas": {"Resource": _RESOURCE, **_reachable([*named, "OperationOutcome"])},
        "responses": {
            f"Error{code}": _error_response(int(code), description)
            for code, description in sorted({**_ERRORS, **_WRITE_ERRORS}.items())
        },
        "securitySchemes": {"bearer": _BEARER},
    }
    doc["security"] = [{"bearer": []}]
    return doc


def install_openapi(app: FastAPI) -> None:
    def cached() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = cached  # type: ignore[method-assign]


def render() -> bytes:
    from app.main import create_app

    # An in-memory URL: generating the document never touches a real database.
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", base_url="http://127.0.0.1:8080"))
    return orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main() -> int:
    OPENAPI_PATH.parent.mkdir(parents=True, exist_ok=True)
    OPENAPI_PATH.write_bytes(render())
    print(f"wrote {OPENAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
