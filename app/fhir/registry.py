"""What the server knows: resource types, their search parameters and operations.

Routing, validation and the CapabilityStatement all read from this one registry, so what /metadata
advertises is exactly what the API serves. Domain packs add to it at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B import get_fhir_model_class

from app.fhir.search.fhirpath import ExpressionError, compile_expression

if TYPE_CHECKING:
    from app.fhir.type_store import TypeStore

# Types that are never stored: they only travel in requests and responses.
_NOT_PERSISTED = frozenset({"OperationOutcome", "Parameters"})

INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str  # number, date, string, token, reference, composite, quantity, uri, special
    expression: str  # FHIRPath (the supported subset, see app.fhir.search.fhirpath)
    url: str = ""
    targets: tuple[str, ...] = ()  # reference targets
    components: tuple[tuple[str, str], ...] = ()  # composite: (definition url, relative expression)
    documentation: str = ""


# Parameters the engine answers from the resource table itself rather than from index rows.
ENGINE_PARAMS = frozenset({"_id", "_lastUpdated"})


@dataclass
class ResourceType:
    name: str
    model: Any
    search_params: dict[str, SearchParam] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)
    index_plan: Any = None  # cached by app.fhir.search.extract
    store: TypeStore | None = None  # kept outside the resource tables (app/fhir/type_store.py)


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
            if model is not None:
                registry.types[name] = ResourceType(name, model)
        for param, base in standard_search_params():
            registry.add_search_param(base, param)
        return registry

    def get(self, name: str) -> ResourceType | None:
        return self.types.get(name)

    def add_search_param(self, base: str, param: SearchParam) -> None:
        """Register a parameter on one type, or on every type for base Resource/DomainResource."""
        supported = composite_supported(param) if param.type == "composite" else indexable(param.expression)
        if param.code not in ENGINE_PARAMS and not supported:
            # Outside what the index supports (e.g. _content, _query, 3-part composites): not advertised.
            return
        if base in ("Resource", "DomainResource"):
            targets = list(self.types.values())
        else:
            targets = [self.types[base]] if base in self.types else []  # e.g. an R4-only type
        for rtype in targets:
            rtype.search_params[param.code] = param
            rtype.index_plan = None  # rebuilt on next use

    def by_url(self, url: str) -> SearchParam | None:
        for rtype in self.types.values():
            for param in rtype.search_params.values():
                if param.url == url:
                    return param
        return None


def indexable(expression: str) -> bool:
    try:
        compile_expression(expression)
    except ExpressionError:
        return False
    return True


COMPOSITE_FIRST = ("token", "reference")
COMPOSITE_SECOND = ("token", "quantity", "date", "string")


def component_types(param: SearchParam) -> tuple[str, ...]:
    """The types of a composite's components, from their definitions (standard parameters)."""
    types = _standard_types_by_url()
    return tuple(types.get(url, "?") for url, _ in param.components)


def composite_supported(param: SearchParam) -> bool:
    kinds = component_types(param)
    if len(kinds) != 2 or kinds[0] not in COMPOSITE_FIRST or kinds[1] not in COMPOSITE_SECOND:
        return False
    return indexable(param.expression) and all(indexable(expr) for _, expr in param.components)


@cache
def _standard_types_by_url() -> dict[str, str]:
    return {param.url: param.type for param, _base in standard_search_params()}


@cache
def standard_search_params() -> tuple[tuple[SearchParam, str], ...]:
    """The R4 search parameters shipped as data (app/fhir/data/search-parameters.json)."""
    raw = resources.files("app.fhir").joinpath("data/search-parameters.json").read_bytes()
    out = []
    for item in json.loads(raw)["parameters"]:
        param = SearchParam(
            code=item["code"],
            type=item["type"],
            expression=item["expression"],
            url=item["url"],
            targets=tuple(item.get("target", ())),
            components=tuple((c["definition"], c["expression"]) for c in item.get("component", ())),
        )
        out.append((param, item["base"]))
    return tuple(out)


@cache
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """Resource type -> the search parameters that put a resource in a Patient's compartment."""
    raw = resources.files("app.fhir").joinpath("data/compartment-patient.json").read_bytes()
    return {name: tuple(params) for name, params in json.loads(raw)["links"].items()}
