"""Read a FHIRPath Patch document (a Parameters resource) into typed operations; malformed input is 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.fhir.outcome import Category, FhirError
from app.fhir.patch.fhirpath import Path, parse_path

# Operation type -> the parts it requires (R4 fhirpatch.html, "Patch operations").
REQUIRED_PARTS = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}
_KNOWN_PARTS = frozenset({"type", "path", "name", "value", "index", "source", "destination"})


@dataclass(frozen=True)
class PatchValue:
    """A value part: value[x] (type_suffix "String" for valueString), a resource, or nested parts."""

    type_suffix: str | None
    json: Any = None
    parts: tuple[tuple[str, PatchValue], ...] | None = None  # (element name, value) for anonymous types


@dataclass(frozen=True)
class FhirPathOp:
    type: str
    path: Path
    name: str | None = None
    value: PatchValue | None = None
    index: int | None = None
    source: int | None = None
    destination: int | None = None

    def describe(self, position: int) -> str:
        return f"operation {position} ({self.type} {self.path.text[:120]})"


def malformed(message: str) -> FhirError:
    return FhirError(Category.INVALID, f"Malformed FHIRPath Patch: {message}", "invalid")


def _value_key(part: dict[str, Any]) -> str | None:
    keys = [k for k in part if k.startswith("value") and len(k) > 5 and k[5].isupper()]
    if len(keys) > 1:
        raise malformed(f"part '{part.get('name')}' has more than one value[x]: {', '.join(keys)}")
    return keys[0] if keys else None


def parse_value(part: dict[str, Any], where: str) -> PatchValue:
    key = _value_key(part)
    if key is not None:
        return PatchValue(key[5:], part[key])
    if isinstance(part.get("resource"), dict):
        return PatchValue(None, part["resource"])
    children = part.get("part")
    if not isinstance(children, list) or not children:
        raise malformed(f"{where} has no value[x], resource or parts")
    parsed = []
    for child in children:
        if not isinstance(child, dict) or not isinstance(child.get("name"), str):
            raise malformed(f"every part of {where} needs a name")
        parsed.append((child["name"], parse_value(child, f"{where}.{child['name']}")))
    return PatchValue(None, parts=tuple(parsed))


def _string_part(part: dict[str, Any], name: str) -> str:
    for key in ("valueString", "valueCode"):
        if isinstance(part.get(key), str) and part[key]:
            return str(part[key])
    raise malformed(f"part '{name}' must have a valueString or valueCode")


def _integer_part(part: dict[str, Any], name: str) -> int:
    value = part.get("valueInteger")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise malformed(f"part '{name}' must have a valueInteger of 0 or more")
    return value


def _operation(parameter: Any, position: int, resource_type: str) -> FhirPathOp:
    if not isinstance(parameter, dict) or parameter.get("name") != "operation":
        raise malformed(f"parameter {position} must be named 'operation'")
    parts: dict[str, dict[str, Any]] = {}
    for part in parameter.get("part") or []:
        name = part.get("name") if isinstance(part, dict) else None
        if name not in _KNOWN_PARTS:
            raise malformed(f"operation {position} has an unknown part {name!r}")
        if name in parts:
            raise malformed(f"operation {position} repeats the part '{name}'")
        parts[name] = part
    if "type" not in parts:
        raise malformed(f"operation {position} has no 'type'")
    op_type = _string_part(parts["type"], "type")
    if op_type not in REQUIRED_PARTS:
        raise malformed(
            f"operation {position} has type '{op_type[:40]}'; expected one of {', '.join(REQUIRED_PARTS)}"
        )
    missing = [p for p in REQUIRED_PARTS[op_type] if p not in parts]
    if missing:
        raise malformed(f"operation {position} ({op_type}) needs the part(s) {', '.join(missing)}")
    ints = {n: _integer_part(parts[n], n) for n in ("index", "source", "destination") if n in parts}
    return FhirPathOp(
        op_type,
        parse_path(_string_part(parts["path"], "path"), resource_type),
        _string_part(parts["name"], "name") if "name" in parts else None,
        parse_value(parts["value"], f"operation {position} value") if "value" in parts else None,
        ints.get("index"),
        ints.get("source"),
        ints.get("destination"),
    )


def parse_fhirpath_patch(document: Any, resource_type: str) -> list[FhirPathOp]:
    """Parameters -> operations. Structure errors are 400; an unsupported path is 422 (see fhirpath.py)."""
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        raise malformed("the body must be a Parameters resource")
    parameters = document.get("parameter")
    if not isinstance(parameters, list) or not parameters:
        raise malformed("the Parameters resource has no 'operation' parameters")
    return [_operation(p, i, resource_type) for i, p in enumerate(parameters)]
