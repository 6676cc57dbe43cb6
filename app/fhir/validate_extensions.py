"""Extensions checked field by field instead of through fhir.resources' Extension model.

Why: the model validates each Extension with Python-level validators that visit all of its 55 fields
(every `value[x]` type), ~25 µs per Extension against ~0.5 µs for the one or two fields it has. A PLO
report keeps its parts as nested extensions (hundreds per message): three quarters of its validation time
went into them (measured: the models 23 -> 4 ms per report, all of its validation 23 -> 7 ms).

`split_extensions` returns the resource without its `extension`/`modifierExtension` lists (a copy of what
changed, the rest shared) and the lists it took out; `extensions_valid` checks those lists with the
Extension model's own field types (pydantic TypeAdapters of the same annotations), its required `url`, its
closed set of fields (the model forbids others) and its one `value[x]`. It only ever says "valid": on
anything else the caller validates the whole resource with the models, whose errors are the ones
reported, so an input is accepted here exactly when the Extension model would accept it.

Left to the models: primitive extension siblings (`_birthDate: {"extension": [...]}`, whose extensions
also stand in for a missing required value) and extensions inside complex values of an extension.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import TypeAdapter, ValidationError

EXTENSION_LISTS = frozenset({"extension", "modifierExtension"})


def split_extensions(value: Any) -> tuple[Any, list[list[Any]]]:
    """`value` without its extension lists (unchanged parts shared, not copied), and those lists."""
    found: list[list[Any]] = []
    return _without(value, found), found


def _without(value: Any, found: list[list[Any]]) -> Any:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, child in value.items():
            if key in EXTENSION_LISTS and isinstance(child, list):
                found.append(child)
                changed = True
            elif key.startswith("_"):
                out[key] = child  # a primitive's extension sibling: the models check it whole
            else:
                new = _without(child, found)
                changed = changed or new is not child
                out[key] = new
        return out if changed else value
    if isinstance(value, list):
        items = [_without(item, found) for item in value]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    return value


@cache
def _fields() -> dict[str, TypeAdapter[Any]]:
    """The Extension model's fields by JSON name, each with a validator of its own type."""
    model = get_fhir_model_class("Extension")
    return {
        info.alias or name: TypeAdapter(info.annotation)
        for name, info in model.model_fields.items()
        if (info.alias or name) != "extension" and info.annotation is not None
    }


def extensions_valid(lists: list[list[Any]]) -> bool:
    """Whether every Extension in `lists` is one the Extension model accepts (False: ask the model)."""
    return all(_list_valid(items) for items in lists)


def _list_valid(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and _one_valid(item) for item in items)


def _one_valid(extension: dict[str, Any]) -> bool:
    if extension.get("url") is None:
        return False
    fields = _fields()
    values = 0
    for key, value in extension.items():
        if key == "extension":
            if not isinstance(value, list) or not _list_valid(value):
                return False
            continue
        adapter = fields.get(key)
        if adapter is None:
            return False
        if key.startswith("value") and value is not None:
            values += 1
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
    return values <= 1
