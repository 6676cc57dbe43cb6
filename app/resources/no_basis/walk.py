"""Every Identifier in a FHIR JSON resource, wherever it occurs, with a FHIRPath-like path to it.

A generic walk rather than a per-type list: identifiers sit in Patient.identifier, in references
(ServiceRequest.requester.identifier), in contained resources, in Bundle entries, in an Identifier's own
assigner, and in extensions (valueIdentifier). FHIR JSON names every Identifier-typed element `identifier`
(or `value[x]` = `valueIdentifier`), so the key is enough to recognise one.
"""

from __future__ import annotations

from typing import Any

_IDENTIFIER_KEYS = frozenset({"identifier", "valueIdentifier"})
# Element definitions describe identifiers (examples, patterns) rather than carry them.
_DEFINITION_KEYS = frozenset({"snapshot", "differential"})

Site = tuple[str, dict[str, Any]]  # (path, the Identifier dict itself: mutations reach the resource)


def identifier_sites(resource: dict[str, Any]) -> list[Site]:
    sites: list[Site] = []
    _walk(resource, str(resource.get("resourceType") or "Resource"), sites)
    return sites


def _is_identifier(value: Any) -> bool:
    return isinstance(value, dict) and ("system" in value or "value" in value or "type" in value)


def _walk(node: dict[str, Any], path: str, sites: list[Site]) -> None:
    skip = _DEFINITION_KEYS if node.get("resourceType") == "StructureDefinition" else frozenset()
    for key, child in node.items():
        if key in skip or not isinstance(child, dict | list):  # primitives hold no Identifier
            continue
        child_path = f"{path}.{key}"
        if isinstance(child, dict):
            if key in _IDENTIFIER_KEYS and _is_identifier(child):
                sites.append((child_path, child))
            _walk(child, child_path, sites)  # e.g. Identifier.assigner.identifier
        elif isinstance(child, list):
            is_identifier_list = key in _IDENTIFIER_KEYS
            for index, item in enumerate(child):
                if isinstance(item, dict):
                    item_path = f"{child_path}[{index}]"
                    if is_identifier_list and _is_identifier(item):
                        sites.append((item_path, item))
                    _walk(item, item_path, sites)
