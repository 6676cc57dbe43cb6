"""_summary and _elements: subsets of stored resources, tagged SUBSETTED as R4 requires."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from app.fhir.outcome import Category, FhirError

SUMMARY_MODES = ("true", "text", "data", "count", "false")
_ALWAYS = ("resourceType", "id", "meta")
_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


@cache
def _element_flags(model: Any) -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
    """(summary element names, mandatory element names, typed choice name -> base name) as JSON names,
    choice types expanded (valueQuantity -> value)."""
    summary, mandatory, choices = set(), set(), {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        json_name = info.alias or name
        if extra.get("summary_element_property"):
            summary.add(json_name)
        # Required primitives carry element_required; required complex elements (Observation.code,
        # Encounter.class) are plain required pydantic fields and must be kept as well.
        if extra.get("element_required") or extra.get("one_of_many_required") or info.is_required():
            mandatory.add(json_name)
        if isinstance(extra.get("one_of_many"), str):
            choices[json_name] = extra["one_of_many"]
    return frozenset(summary), frozenset(mandatory), choices


def _choice_base(key: str, names: frozenset[str]) -> bool:
    """valueQuantity belongs to value[x] when the model lists the typed names; keep both spellings."""
    return key in names or key.lstrip("_") in names


def subset(content: bytes, model: Any, summary: str | None, elements: tuple[str, ...]) -> bytes:
    if (summary in (None, "false")) and not elements:
        return content
    resource: dict[str, Any] = orjson.loads(content)
    summary_names, mandatory, choices = _element_flags(model)
    if elements:
        keep = frozenset(elements) | mandatory
        # _elements names a choice element by its base name (`value` for valueQuantity, ...).
        out = {
            k: v
            for k, v in resource.items()
            if k in _ALWAYS or _choice_base(k, keep) or choices.get(k.lstrip("_")) in keep
        }
    elif summary == "true":
        out = {k: v for k, v in resource.items() if k in _ALWAYS or _choice_base(k, summary_names)}
    elif summary == "text":
        out = {k: v for k, v in resource.items() if k in (*_ALWAYS, "text") or _choice_base(k, mandatory)}
    else:  # data
        out = {k: v for k, v in resource.items() if k != "text"}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    out["meta"] = meta
    return orjson.dumps(out)


def parse_summary(value: str | None) -> str | None:
    if value is not None and value not in SUMMARY_MODES:
        raise FhirError(Category.INVALID, f"_summary must be one of {', '.join(SUMMARY_MODES)}", "value")
    return value


def parse_elements(values: list[str]) -> tuple[str, ...]:
    return tuple(e.strip() for v in values for e in v.split(",") if e.strip())
