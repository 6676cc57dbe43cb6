"""Operations as registry data: the routes, /metadata and the OperationDefinitions are built from them.

Each part of the server that offers operations ($everything, $reindex, $export, the referral workflow,
the KITH adapter) lists them as `Operation` records; main.py gathers them in one `OperationRegistry`,
mounts its routes and hands it to the CapabilityStatement, so what /metadata says the server does and
what it routes cannot drift apart (as Blaze builds both from one table). Each record also yields its
OperationDefinition, served at `GET /OperationDefinition/{id}`.

An endpoint is a FastAPI handler: instance-level ones take `res_id` from the path, and those offered on
every type (`types=ANY_TYPE`) also `res_type`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter
from starlette.responses import Response

Level = Literal["system", "type", "instance"]
Endpoint = Callable[..., Awaitable[Response]]
ANY_TYPE = ("*",)  # offered on every resource type
OWN_CANONICAL = "http://helsebro.no/fhir/OperationDefinition"


@dataclass(frozen=True)
class Parameter:
    name: str
    use: Literal["in", "out"]
    type: str | None = None  # a FHIR type
    min: int = 0
    max: str = "1"
    documentation: str = ""


@dataclass(frozen=True)
class Operation:
    code: str  # without the $
    level: Level
    method: Literal["GET", "POST"]
    endpoint: Endpoint
    title: str
    types: tuple[str, ...] = ()  # the types of a type- or instance-level operation; ANY_TYPE for all
    description: str = ""
    parameters: tuple[Parameter, ...] = ()
    affects_state: bool = False
    definition_url: str | None = None  # a published definition's canonical (HL7's); None: our own
    tags: tuple[str, ...] = ("Operations",)
    # More of add_api_route's arguments (response_class, responses) for the OpenAPI document.
    route_options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        scope = "" if self.level == "system" or self.types == ANY_TYPE else f"{self.types[0]}-"
        return f"{scope}{self.code}"

    @property
    def canonical(self) -> str:
        return self.definition_url or f"{OWN_CANONICAL}/{self.id}"

    def paths(self) -> list[str]:
        if self.level == "system":
            return [f"/${self.code}"]
        types = ["{res_type:fhirtype}"] if self.types == ANY_TYPE else list(self.types)
        instance = "/{res_id:fhirid}" if self.level == "instance" else ""
        return [f"/{t}{instance}/${self.code}" for t in types]

    def definition(self) -> dict[str, Any]:
        """The OperationDefinition (R4) of this operation."""
        on_types = self.level != "system"
        definition: dict[str, Any] = {
            "resourceType": "OperationDefinition",
            "id": self.id,
            "url": self.canonical,
            "name": "".join(part.capitalize() for part in self.id.replace("$", "").split("-")),
            "title": self.title,
            "status": "active",
            "kind": "operation",
            "publisher": "Helsebro",
            "affectsState": self.affects_state,
            "code": self.code,
            "system": self.level == "system",
            "type": self.level == "type",
            "instance": self.level == "instance",
        }
        if self.description:
            definition["description"] = self.description
        if on_types:
            definition["resource"] = ["Resource"] if self.types == ANY_TYPE else list(self.types)
        if self.parameters:
            definition["parameter"] = [_parameter(p) for p in self.parameters]
        return definition

    def openapi(self) -> dict[str, Any]:
        """The operation's input for the OpenAPI document: query parameters of a GET, a Parameters body
        of a POST (FHIR's two ways of passing them), built from the parameters as /metadata's are."""
        inputs = [p for p in self.parameters if p.use == "in"]
        if not inputs:
            return {}
        if self.method == "GET":
            return {"parameters": [_query_parameter(p) for p in inputs]}
        listed = "; ".join(
            f"`{p.name}` ({p.type}, {p.min}..{p.max}){': ' + p.documentation if p.documentation else ''}"
            for p in inputs
        )
        return {
            "requestBody": {
                "required": any(p.min >= 1 for p in inputs),
                "description": f"A Parameters resource: {listed}",
                "content": {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/Parameters"}}},
            }
        }


# FHIR primitive types that are JSON numbers or booleans in a query's schema; others are strings.
_QUERY_TYPES = {
    "integer": "integer",
    "positiveInt": "integer",
    "unsignedInt": "integer",
    "boolean": "boolean",
}


def _query_parameter(parameter: Parameter) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _QUERY_TYPES.get(parameter.type or "", "string")}
    return {
        "name": parameter.name,
        "in": "query",
        "required": parameter.min >= 1,
        "schema": {"type": "array", "items": schema} if parameter.max != "1" else schema,
        "description": f"{parameter.type}: {parameter.documentation}".rstrip(": "),
    }


def _parameter(parameter: Parameter) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": parameter.name,
        "use": parameter.use,
        "min": parameter.min,
        "max": parameter.max,
    }
    if parameter.documentation:
        out["documentation"] = parameter.documentation
    if parameter.type:
        out["type"] = parameter.type
    return out


class OperationRegistry:
    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self.operations: list[Operation] = []
        for operation in operations:
            self.add(operation)

    def add(self, operation: Operation) -> None:
        routed = {(o.method, path) for o in self.operations for path in o.paths()}
        for path in operation.paths():
            if (operation.method, path) in routed:
                raise ValueError(f"{operation.method} {path} is registered twice")
        self.operations.append(operation)

    def router(self) -> APIRouter:
        """One route per operation and path, in the order they were registered."""
        router = APIRouter()
        for operation in self.operations:
            for path in operation.paths():
                router.add_api_route(
                    path,
                    operation.endpoint,
                    methods=[operation.method],
                    tags=list(operation.tags),
                    summary=operation.title,
                    description=operation.description or None,
                    name=operation.id,
                    **operation.route_options,
                )
        return router

    def system_level(self) -> list[Operation]:
        return [o for o in self.operations if o.level == "system"]

    def on_type(self, name: str) -> list[Operation]:
        """The operations a resource type offers (type and instance level), for /metadata."""
        return [
            o for o in self.operations if o.level != "system" and (o.types == ANY_TYPE or name in o.types)
        ]

    def definition(self, definition_id: str) -> dict[str, Any] | None:
        """The OperationDefinition of that id: one for all the levels an operation is offered at."""
        parts = [o.definition() for o in self.operations if o.id == definition_id]
        if not parts:
            return None
        merged = parts[0]
        for part in parts[1:]:
            for flag in ("system", "type", "instance"):
                merged[flag] = merged[flag] or part[flag]
            if "resource" in part:
                merged["resource"] = sorted({*merged.get("resource", []), *part["resource"]})
        return merged


def capability_entry(operation: Operation) -> dict[str, str]:
    """CapabilityStatement.rest[.resource].operation: name and definition."""
    return {"name": operation.code, "definition": operation.canonical}
