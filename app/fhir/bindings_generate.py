"""Build the shipped table of R4's required bindings from the official definitions.

    python -m app.fhir.bindings_generate ../shared/data/fhir-r4

reads the base StructureDefinitions (profiles-resources.json.xz, profiles-types.json.xz) and the value sets
and code systems they bind to (valuesets.json.xz, v3-codesystems.json.xz), expands every value set that a
`required` binding names, hierarchical codes included, and writes app/fhir/data/required-bindings.json:

    {"code": {"Observation.status": ["amended", ...], ...},
     "coding": {"Condition.clinicalStatus": {"http://terminology.hl7.org/CodeSystem/condition-clinical":
                                              ["active", ...]}, ...},
     "open": ["Attachment.contentType", ...]}

Keys are the model class that holds the element (the element path's segments joined in CamelCase, as the
R4B models name their backbone elements) and the element's JSON name. A value set that cannot be
enumerated here (a whole external system such as BCP 13 mime types or BCP 47 languages, or a filter other
than is-a on a FHIR code system) is listed under "open" and not checked.
"""

from __future__ import annotations

import json
import lzma
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
OUTPUT = DATA_DIR / "required-bindings.json"


class Unexpandable(Exception):
    pass


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    with lzma.open(path) as file:
        for entry in json.load(file)["entry"]:
            yield entry["resource"]


def _flatten(concepts: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for concept in concepts:
        yield concept
        yield from _flatten(concept.get("concept", []))


def _descendants(concepts: list[dict[str, Any]], code: str, inside: bool = False) -> Iterator[str]:
    for concept in concepts:
        here = inside or concept["code"] == code
        if here:
            yield concept["code"]
        yield from _descendants(concept.get("concept", []), code, here)


class Terminology:
    def __init__(self, source: Path) -> None:
        self.code_systems: dict[str, dict[str, Any]] = {}
        self.value_sets: dict[str, dict[str, Any]] = {}
        for name in ("valuesets.json.xz", "v3-codesystems.json.xz"):
            for resource in _entries(source / name):
                url = resource.get("url")
                if resource["resourceType"] == "CodeSystem" and url:
                    self.code_systems.setdefault(url, resource)
                elif resource["resourceType"] == "ValueSet" and url:
                    self.value_sets.setdefault(url, resource)

    def expand(self, url: str) -> dict[str, set[str]]:
        """system -> codes of the value set at `url` (a version suffix |4.0.1 is ignored)."""
        value_set = self.value_sets.get(url.split("|")[0])
        if value_set is None:
            raise Unexpandable(f"value set {url} is not in the definitions")
        compose = value_set.get("compose")
        if compose is None:
            raise Unexpandable(f"value set {url} has no compose")
        codes: dict[str, set[str]] = {}
        for include in compose.get("include", []):
            for system, found in self._include(include).items():
                codes.setdefault(system, set()).update(found)
        for exclude in compose.get("exclude", []):
            for system, found in self._include(exclude).items():
                codes.get(system, set()).difference_update(found)
        return codes

    def _include(self, include: dict[str, Any]) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        for imported in include.get("valueSet", []):
            for imported_system, found in self.expand(imported).items():
                result.setdefault(imported_system, set()).update(found)
        system: str | None = include.get("system")
        if system is None:
            return result
        if "concept" in include:
            result.setdefault(system, set()).update(c["code"] for c in include["concept"])
            return result
        code_system = self.code_systems.get(system)
        if code_system is None or code_system.get("content") not in (None, "complete"):
            raise Unexpandable(f"code system {system} is not enumerable here")
        concepts = code_system.get("concept", [])
        filters = include.get("filter", [])
        if not filters:
            result.setdefault(system, set()).update(c["code"] for c in _flatten(concepts))
            return result
        for rule in filters:
            if rule.get("property") == "concept" and rule.get("op") in ("is-a", "descendent-of"):
                found = set(_descendants(concepts, rule["value"]))
                if rule["op"] == "descendent-of":
                    found.discard(rule["value"])
                result.setdefault(system, set()).update(found)
            else:
                raise Unexpandable(f"filter {rule} on {system}")
        return result


def _holder(path: str) -> str:
    """'Observation.referenceRange.type' -> 'ObservationReferenceRange.type' (the R4B models' class names)."""
    *parents, name = path.split(".")
    return "".join(p[0].upper() + p[1:] for p in parents) + "." + name


def required_bindings(source: Path) -> dict[str, Any]:
    terminology = Terminology(source)
    code: dict[str, list[str]] = {}
    coding: dict[str, dict[str, list[str]]] = {}
    open_sets: set[str] = set()
    for name in ("profiles-types.json.xz", "profiles-resources.json.xz"):
        for definition in _entries(source / name):
            if definition.get("resourceType") != "StructureDefinition" or definition.get("kind") == "logical":
                continue
            for element in definition.get("snapshot", {}).get("element", []):
                binding = element.get("binding") or {}
                path = element["path"]
                if binding.get("strength") != "required" or "valueSet" not in binding or path.endswith("[x]"):
                    continue
                types = {t["code"] for t in element.get("type", [])}
                key = _holder(path)
                try:
                    expanded = terminology.expand(binding["valueSet"])
                except Unexpandable:
                    open_sets.add(key)
                    continue
                if types == {"code"}:
                    code[key] = sorted({c for found in expanded.values() for c in found})
                elif types <= {"Coding", "CodeableConcept"}:
                    coding[key] = {system: sorted(found) for system, found in sorted(expanded.items())}
    return {
        "code": dict(sorted(code.items())),
        "coding": dict(sorted(coding.items())),
        "open": sorted(open_sets),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    table = required_bindings(Path(argv[0]))
    OUTPUT.write_text(json.dumps(table, indent=0, ensure_ascii=False, sort_keys=True) + "\n")
    print(
        f"wrote {OUTPUT}: {len(table['code'])} code and {len(table['coding'])} coded elements, "
        f"{len(table['open'])} open"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
