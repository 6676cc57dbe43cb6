"""CapabilityStatement generated from the same registry that routes and validates requests."""

from __future__ import annotations

from typing import Any

from app.fhir.registry import INTERACTIONS, Registry
from app.fhir.service import fhir_instant, now_ms

SOFTWARE_NAME = "Helsebro"


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
                {"name": "_id", "type": "token", "documentation": "Logical id of the resource"},
                *[
                    {"name": p.code, "type": p.type, "documentation": p.documentation}
                    for p in rtype.search_params.values()
                ],
            ],
        }
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
                "documentation": "Search (beyond conditional criteria _id and identifier) follows in a later release.",
                "resource": resources,
                "interaction": [{"code": "history-system"}],
            }
        ],
    }
