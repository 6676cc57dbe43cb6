"""Build the shipped search-parameter and compartment data from the official R4 definitions.

    python -m app.fhir.search.generate ../shared/data/fhir-r4

reads search-parameters.json and compartmentdefinition-patient.json (FHIR 4.0.1) and writes the compact
files the server loads at start-up: app/fhir/data/search-parameters.json (one entry per parameter and base
type, with the FHIRPath expression cut down to that base) and app/fhir/data/compartment-patient.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# Parameters defined on Resource/DomainResource; the engine handles them itself (_id, _lastUpdated, ...)
# but their definitions still ship so that /metadata can describe them.
_COMMON_BASES = {"Resource", "DomainResource"}


def split_expression(expression: str, base: str) -> str:
    """Keep the union branches of a multi-base expression that apply to `base`. A branch relative to the
    resource (R4's InsurancePlan name is `name | alias`) applies to every base and gets its type in front."""
    mine = []
    for branch in (b.strip() for b in _split_union(expression)):
        path = branch.lstrip("(")
        if path.startswith(f"{base}.") or path == base:
            mine.append(branch)
        elif path[:1].islower():
            mine.append(f"{branch[: len(branch) - len(path)]}{base}.{path}")
    return " | ".join(mine)


def _split_union(expression: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    for char in expression:
        if char == "'":
            quoted = not quoted
        if not quoted:
            depth += char == "("
            depth -= char == ")"
        if char == "|" and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def compact(resource: dict[str, Any], base: str) -> dict[str, Any]:
    expression = resource.get("expression") or ""
    entry: dict[str, Any] = {
        "url": resource["url"],
        "code": resource["code"],
        "base": base,
        "type": resource["type"],
        "expression": expression if base in _COMMON_BASES else split_expression(expression, base),
    }
    if resource.get("target"):
        entry["target"] = sorted(resource["target"])
    if resource.get("component"):
        entry["component"] = [
            {"definition": c["definition"], "expression": c["expression"]} for c in resource["component"]
        ]
    if resource.get("modifier"):
        entry["modifier"] = resource["modifier"]
    return entry


def generate(source: Path) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    bundle = json.loads((source / "search-parameters.json").read_text(encoding="utf-8"))
    params = []
    for item in bundle["entry"]:
        resource = item["resource"]
        for base in resource["base"]:
            params.append(compact(resource, base))
    params.sort(key=lambda p: (p["base"], p["code"]))
    compartment = json.loads((source / "compartmentdefinition-patient.json").read_text(encoding="utf-8"))
    links = {r["code"]: r["param"] for r in compartment["resource"] if r.get("param")}
    return params, dict(sorted(links.items()))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    params, links = generate(Path(argv[0]))
    header = {"fhirVersion": "4.0.1", "generatedBy": "app.fhir.search.generate"}
    (DATA_DIR / "search-parameters.json").write_text(
        json.dumps({**header, "parameters": params}, indent=0, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (DATA_DIR / "compartment-patient.json").write_text(
        json.dumps({**header, "compartment": "Patient", "links": links}, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(params)} parameters and {len(links)} compartment links to {DATA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
