"""What FHIRPath Patch needs to know about element definitions, read from the fhir.resources models.

JSON alone cannot tell whether an absent element repeats (so `add` must create a list) or which JSON key
a choice element `deceased[x]` takes for a given type; the R4B models can.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class


@dataclass(frozen=True)
class Element:
    name: str  # JSON name, or the base name of a choice element ("deceased")
    is_list: bool
    model: Any | None  # model class of a complex type; None for primitives
    choices: dict[str, Any | None] = field(default_factory=dict)  # choice element: JSON key -> model
    base: str | None = None  # set for choice elements, e.g. "deceased" for deceasedBoolean


def _unwrap(annotation: Any) -> tuple[bool, Any | None]:
    """(is_list, model class or None) of a field annotation like Optional[List[abc.HumanNameType]]."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            # fhir_comments-style unions mix str and list: not an element, treat as primitive.
            if len(args) != 1:
                return is_list, None
            annotation = args[0]
        elif origin is list:
            is_list = True
            annotation = typing.get_args(annotation)[0]
        else:
            break
    get_klass = getattr(annotation, "get_model_klass", None)
    if get_klass is None:
        return is_list, None  # primitive (possibly Annotated)
    try:
        return is_list, get_klass()
    except (AttributeError, ImportError, ValueError):
        return is_list, None


@cache
def elements(model: Any) -> dict[str, Element]:
    """Elements of a model by JSON name; a choice element appears under its base name and each JSON key."""
    found: dict[str, Element] = {}
    choices: dict[str, dict[str, Any | None]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        json_name = info.alias or name
        if json_name.startswith("_") or not extra.get("element_property"):
            continue
        is_list, child = _unwrap(info.annotation)
        base = extra.get("one_of_many")
        if isinstance(base, str):
            choices.setdefault(base, {})[json_name] = child
        found[json_name] = Element(json_name, is_list, child)
    for base, keys in choices.items():
        found[base] = Element(base, False, None, keys, base)
        for key in keys:
            found[key] = Element(key, False, keys[key], keys, base)
    return found


def element(model: Any | None, name: str) -> Element | None:
    return None if model is None else elements(model).get(name)


@cache
def resource_model(resource_type: str) -> Any | None:
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


def model_of_value(model: Any | None, value: Any) -> Any | None:
    """A contained resource is typed by its own resourceType, not by the generic Resource field type."""
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return resource_model(value["resourceType"])
    return model
