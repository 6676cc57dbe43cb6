"""CapabilityStatement generated from the same registry that routes and validates requests."""

from __future__ import annotations

from typing import Any

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


def capability_statement(registry: Registry, base_url: str, version: str) -> dict[str, Any]:
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
        if name == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
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
        "implementation": {"description": "Helsebro FHIR R4 server", "url": base_url or "/"},
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
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
            }
        ],
    }
