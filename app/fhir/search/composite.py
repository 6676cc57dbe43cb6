"""Composite search parameters (code-value-quantity, component-code-value-concept, ...).

A composite row holds the values of both components taken from the same root element (the Observation,
or one Observation.component), so `code$value` only matches when both belong together.
"""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING, Any

from app.fhir.search.fhirpath import Branch, evaluate_relative
from app.fhir.search.hashing import hash64
from app.fhir.search.normalize import MAX_TIME, MIN_TIME, date_range, normalize_string

if TYPE_CHECKING:
    from app.fhir.search.extract import PlannedParam

Row = dict[str, Any]


def first_hashes(res_type: str, code: str, system: str | None, value: str) -> tuple[int, int]:
    return hash64(res_type, code, "1", system or "", value), hash64(res_type, code, "1", value)


def second_token_hashes(res_type: str, code: str, system: str | None, value: str) -> tuple[int, int]:
    return hash64(res_type, code, "2", system or "", value), hash64(res_type, code, "2", value)


def _tokens(value: Any) -> list[tuple[str | None, str]]:
    """(system, code) pairs of a code, Coding, CodeableConcept or Identifier."""
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        return [
            (c.get("system"), c["code"]) for c in value["coding"] if isinstance(c, dict) and c.get("code")
        ]
    code = value.get("code") or value.get("value")
    return [(value.get("system"), code)] if isinstance(code, str) else []


def _first(res_type: str, code: str, kind: str, values: list[Any]) -> list[Row]:
    out = []
    for value in values:
        if kind == "reference":
            ref = value.get("reference") if isinstance(value, dict) else None
            if isinstance(ref, str):
                h = hash64(res_type, code, "1", ref)
                out.append({"first_sys_value": h, "first_value": h})
        else:
            for system, token in _tokens(value):
                sys_value, plain = first_hashes(res_type, code, system, token)
                out.append({"first_sys_value": sys_value, "first_value": plain})
    return out


def _second(res_type: str, code: str, kind: str, values: list[Any]) -> list[Row]:
    out: list[Row] = []
    for value in values:
        if kind == "token":
            for system, token in _tokens(value):
                a, b = second_token_hashes(res_type, code, system, token)
                out.append({"second_a": a, "second_b": b})
        elif kind == "quantity" and isinstance(value, dict) and isinstance(value.get("value"), int | float):
            unit = value.get("code") or value.get("unit") or ""
            out.append(
                {
                    "second_number": float(value["value"]),
                    "second_a": hash64(res_type, code, "2", value.get("system") or "", unit),
                    "second_b": hash64(res_type, code, "2", unit),
                }
            )
        elif kind == "date":
            if isinstance(value, str) and (bounds := date_range(value)):
                out.append({"second_low": bounds[0], "second_high": bounds[1]})
            elif isinstance(value, dict):
                start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
                end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
                out.append(
                    {
                        "second_low": start[0] if start else MIN_TIME,
                        "second_high": end[1] if end else MAX_TIME,
                    }
                )
        elif kind == "string" and isinstance(value, str) and normalize_string(value):
            out.append({"second_string": normalize_string(value)})
    return out


def composite_rows(res_type: str, planned: PlannedParam, element: Any) -> list[Row]:
    (kind1, branches1), (kind2, branches2) = planned.components
    firsts = [n.value for n in evaluate_relative(branches1, element)]
    seconds = [n.value for n in evaluate_relative(branches2, element)]
    return combine_rows(res_type, planned.param.code, (kind1, kind2), firsts, seconds)


def combine_rows(
    res_type: str, code: str, kinds: tuple[str, str], firsts: list[Any], seconds: list[Any]
) -> list[Row]:
    """The rows of one root element from the values its two components selected."""
    first_rows = _first(res_type, code, kinds[0], firsts)
    second_rows = _second(res_type, code, kinds[1], seconds)
    base = {"res_type": res_type, "param": code, "hash_identity": hash64(res_type, code)}
    empty = {
        "second_a": None,
        "second_b": None,
        "second_number": None,
        "second_low": None,
        "second_high": None,
        "second_string": None,
    }
    return [{**base, **empty, **first, **second} for first, second in product(first_rows, second_rows)]


__all__ = ["Branch", "combine_rows", "composite_rows"]
