"""What the server knows: resource types, their search parameters and operations.

Routing, validation and the CapabilityStatement all read from this one registry, so what /metadata
advertises is exactly what the API serves. Domain packs add to it at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# Types that are never stored: they only travel in requests and responses.
_NOT_PERSISTED = frozenset({"OperationOutcome", "Parameters"})

INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "history-type", "create")


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str  # token, string, date, reference, ...
    path: str  # element name on the resource, e.g. "identifier"
    documentation: str = ""


@dataclass
class ResourceType:
    name: str
    model: Any
    search_params: dict[str, SearchParam] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)


@cache
def r4_resource_type_names() -> tuple[str, ...]:
    """The R4 (4.0.1) resource list, shipped as data."""
    raw = resources.files("app.fhir").joinpath("data/r4-resource-types.json").read_bytes()
    return tuple(json.loads(raw)["resourceTypes"])


def _load_model(name: str) -> Any | None:
    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None  # an R4 type that the R4B models do not carry (e.g. MedicinalProduct)


class Registry:
    def __init__(self) -> None:
        self.types: dict[str, ResourceType] = {}
        self.operations: dict[str, str] = {}

    @classmethod
    def standard(cls) -> Registry:
        registry = cls()
        for name in r4_resource_type_names():
            if name in _NOT_PERSISTED:
                continue
            model = _load_model(name)
            if model is None:
                continue
            rtype = ResourceType(name, model)
            if "identifier" in model.model_fields:
                rtype.search_params["identifier"] = SearchParam(
                    "identifier", "token", "identifier", f"An identifier of the {name}"
                )
            registry.types[name] = rtype
        return registry

    def get(self, name: str) -> ResourceType | None:
        return self.types.get(name)

    def add_search_param(self, type_name: str, param: SearchParam) -> None:
        self.types[type_name].search_params[param.code] = param
