"""CapabilityStatement generated from the same registry that routes and validates requests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.fhir.operations import OperationRegistry, capability_entry
from app.fhir.registry import INTERACTIONS, Registry, SearchParam
from app.fhir.service import fhir_instant, now_ms

SOFTWARE_NAME = "Helsebro"


def _search_param(param: SearchParam) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.code, "type": param.type}
    if param.url:
        out["definition"] = param.url
    if param.documentation:
        out["documentation"] = param.documentation
    return out


def capability_statement(
    registry: Registry, operations: OperationRegistry, base_url: str, version: str
) -> dict[str, Any]:
    """The statement of this server. With no BASE_URL, `implementation.url` is left for the /metadata
    route to fill in from the request (`with_implementation_url`)."""
    resources = []
    for name in sorted(registry.types):
        rtype = registry.types[name]
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchParam": [
                _search_param(p) for p in sorted(rtype.search_params.values(), key=lambda p: p.code)
            ],
        }
        includes = sorted(f"{name}:{p.code}" for p in rtype.search_params.values() if p.type == "reference")
        if includes:  # FHIR JSON has no empty arrays
            entry["searchInclude"] = includes
        offered = operations.on_type(name)
        if offered:
            entry["operation"] = _unique(capability_entry(o) for o in offered)
        if rtype.profiles:
            entry["supportedProfile"] = list(rtype.profiles)
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir_instant(now_ms()),
        "publisher": "Helsebro",
        "kind": "instance",
        "software": {"name": SOFTWARE_NAME, "version": version},
        "implementation": {
            "description": "Helsebro FHIR R4 server",
            **({"url": base_url} if base_url else {}),
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Search parameters are indexed at write time; unknown parameters are ignored "
                "and reported in the Bundle unless Prefer: handling=strict. Modifiers: token :not, :text, "
                ":of-type, :in, :not-in; string :exact, :contains; uri :above, :below; reference :identifier; "
                ":missing on every type. Composite parameters, chains, _has, _include and _revinclude "
                "(with :iterate) are supported.",
                "resource": resources,
                "operation": _unique(capability_entry(o) for o in operations.system_level()),
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
            }
        ],
    }


def _unique(entries: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """One entry per definition: an operation at type and instance level is one operation."""
    seen: dict[str, dict[str, str]] = {}
    for entry in entries:
        seen.setdefault(entry["definition"], entry)
    return list(seen.values())


def with_implementation_url(statement: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The statement naming `base_url` (the request's) as the implementation's URL."""
    implementation = {**statement["implementation"], "url": base_url}
    return {**statement, "implementation": implementation}
