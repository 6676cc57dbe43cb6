"""Build the shipped JSON schemas of R4's resources and data types from the official definitions.

    python -m app.fhir.schemas_generate ../shared/data/fhir-r4

reads the base StructureDefinitions (profiles-resources.json.xz, profiles-types.json.xz) and writes
app/fhir/data/r4-schemas.json: one JSON schema (OpenAPI 3.1 dialect) per resource, data type, primitive
type and backbone element, keyed by name, referring to each other as `#/components/schemas/<name>` so
that app/openapi.py can put the ones a document needs under `components.schemas` unchanged.

- Backbone elements are named by their path with `_` (`Patient_Contact`, `Observation_ReferenceRange`),
  as the official fhir.schema.json names them; `contentReference` (Questionnaire.item.item) refers back.
- A choice element `value[x]` becomes one property per type (`valueQuantity`, `valueString`, ...).
- A primitive element `birthDate` has its companion `_birthDate` (an Element: id and extensions).
- Repeating elements are non-empty arrays, as FHIR JSON requires; `min >= 1` makes an element required
  (choices excepted); objects allow no other properties.
- Codes bound `required` get their codes as an `enum`, taken from app/fhir/data/required-bindings.json
  (built by app.fhir.bindings_generate from the same definitions), so both tables agree.
- `Resource` (contained resources, Bundle entries, Parameters) stays the free-form schema app/openapi.py
  defines: any resource, checked on write by the validator.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from app.fhir.bindings_generate import DATA_DIR, _entries, _holder

OUTPUT = DATA_DIR / "r4-schemas.json"
REF = "#/components/schemas/"
_REGEX = "http://hl7.org/fhir/StructureDefinition/regex"
_JSON_TYPES = {"boolean": "boolean", "integer": "integer", "positiveInt": "integer", "unsignedInt": "integer"}
_MINIMUM = {"positiveInt": 1, "unsignedInt": 0}
# FHIRPath system types of Element.id, Extension.url and the primitives' own values.
_SYSTEM = "http://hl7.org/fhirpath/System."
_SYSTEM_TYPES = {"String": "string", "Boolean": "boolean", "Integer": "integer", "Decimal": "number"}
_ABSTRACT = ("Resource", "DomainResource")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF + name}


def _short(element: dict[str, Any]) -> str:
    return str(element.get("short", "")).strip()


def _primitive(definition: dict[str, Any]) -> dict[str, Any]:
    name = definition["id"]
    value = next(e for e in definition["snapshot"]["element"] if e["path"] == f"{name}.value")
    schema: dict[str, Any] = {"type": _JSON_TYPES.get(name, "number" if name == "decimal" else "string")}
    if name in _MINIMUM:
        schema["minimum"] = _MINIMUM[name]
    regex = next(
        (
            x["valueString"]
            for t in value.get("type", [])
            for x in t.get("extension", [])
            if x["url"] == _REGEX
        ),
        None,
    )
    if regex and schema["type"] == "string":
        schema["pattern"] = f"^{regex}$"
    schema["description"] = str(definition.get("description", "")).split("\n")[0]
    return schema


def _backbone_name(path: str) -> str:
    """'Observation.referenceRange' -> 'Observation_ReferenceRange'."""
    root, *rest = path.split(".")
    return "_".join([root, *(part[0].upper() + part[1:] for part in rest)])


class _Builder:
    def __init__(self, bindings: dict[str, list[str]], primitives: set[str]) -> None:
        self.bindings = bindings
        self.primitives = primitives
        self.schemas: dict[str, dict[str, Any]] = {}

    def structure(self, definition: dict[str, Any]) -> None:
        elements = definition["snapshot"]["element"]
        root = elements[0]["path"]
        children: dict[str, list[dict[str, Any]]] = {}
        for element in elements[1:]:
            parent = element["path"].rsplit(".", 1)[0]
            children.setdefault(parent, []).append(element)
        is_resource = definition["kind"] == "resource"
        self._object(root, root, children, is_resource, str(definition.get("description", "")).split("\n")[0])

    def _object(
        self,
        name: str,
        path: str,
        children: dict[str, list[dict[str, Any]]],
        is_resource: bool,
        description: str,
    ) -> None:
        properties: dict[str, Any] = {}
        required: list[str] = []
        if is_resource:
            properties["resourceType"] = {"type": "string", "const": name}
            required.append("resourceType")
        for element in children.get(path, []):
            self._element(element, children, properties, required)
        schema: dict[str, Any] = {"type": "object", "description": description, "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        self.schemas[name] = schema

    def _element(
        self,
        element: dict[str, Any],
        children: dict[str, list[dict[str, Any]]],
        properties: dict[str, Any],
        required: list[str],
    ) -> None:
        path = element["path"]
        base = path.rsplit(".", 1)[1]
        repeats = element.get("max") != "1" and element.get("max") != "0"
        if element.get("max") == "0":
            return
        if "contentReference" in element:
            options = [(base, _ref(_backbone_name(element["contentReference"].lstrip("#"))), False)]
        else:
            types = [t["code"] for t in element.get("type", [])]
            choice = base.endswith("[x]")
            options = []
            for code in types:
                key = base[:-3] + code[0].upper() + code[1:] if choice else base
                options.append((key, self._type_schema(code, element, children), code in self.primitives))
        for key, item, primitive in options:
            codes = self.bindings.get(_holder(path)) if item == _ref("code") else None
            if codes:
                item = {"type": "string", "enum": codes}
            properties[key] = {"type": "array", "minItems": 1, "items": item} if repeats else item
            short = _short(element)
            if short:
                properties[key] = {**properties[key], "description": short}
            if primitive:
                extension = _ref("Element")
                properties[f"_{key}"] = (
                    {"type": "array", "items": {"anyOf": [extension, {"type": "null"}]}}
                    if repeats
                    else extension
                )
        if element.get("min", 0) >= 1 and len(options) == 1:
            required.append(options[0][0])

    def _type_schema(
        self, code: str, element: dict[str, Any], children: dict[str, list[dict[str, Any]]]
    ) -> dict[str, Any]:
        path = element["path"]
        if code.startswith(_SYSTEM):
            return {"type": _SYSTEM_TYPES.get(code.removeprefix(_SYSTEM), "string")}
        if code in ("BackboneElement", "Element") and path in children:
            name = _backbone_name(path)
            self._object(name, path, children, False, _short(element))
            return _ref(name)
        return _ref("Resource" if code in _ABSTRACT else code)


def r4_schemas(source: Path) -> dict[str, dict[str, Any]]:
    bindings: dict[str, list[str]] = json.loads((DATA_DIR / "required-bindings.json").read_text())["code"]
    definitions = [
        d
        for name in ("profiles-types.json.xz", "profiles-resources.json.xz")
        for d in _entries(source / name)
        if d.get("resourceType") == "StructureDefinition" and d.get("derivation") != "constraint"
    ]
    primitives = {d["id"] for d in definitions if d["kind"] == "primitive-type"}
    builder = _Builder(bindings, primitives)
    for definition in definitions:
        if definition["kind"] == "primitive-type":
            builder.schemas[definition["id"]] = _primitive(definition)
        elif definition["kind"] in ("complex-type", "resource") and definition["id"] not in (
            *_ABSTRACT,
            "BackboneElement",
        ):
            builder.structure(definition)
    return dict(sorted(builder.schemas.items()))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    schemas = r4_schemas(Path(argv[0]))
    OUTPUT.write_text(json.dumps(schemas, separators=(",", ":"), ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {OUTPUT}: {len(schemas)} schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
