"""Resource -> index rows, computed once at write time and stored in the same transaction.

Each search parameter's FHIRPath expression (compiled once per type) yields elements; each element is
turned into rows of the parameter type's table. Element kinds are recognised by their JSON shape
(CodeableConcept has `coding`, Identifier has `system`+`value`, ...), which is what FHIR JSON gives us.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.fhir.registry import ENGINE_PARAMS, ResourceType, SearchParam, component_types
from app.fhir.search.composite import composite_rows
from app.fhir.search.fhirpath import Branch, Node, compile_expression, evaluate
from app.fhir.search.hashing import hash64
from app.fhir.search.normalize import MAX_TIME, MIN_TIME, date_range, normalize_string

Row = dict[str, Any]
CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_HUMAN_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


@dataclass
class IndexRows:
    token: list[Row] = field(default_factory=list)
    string: list[Row] = field(default_factory=list)
    date: list[Row] = field(default_factory=list)
    number: list[Row] = field(default_factory=list)
    quantity: list[Row] = field(default_factory=list)
    uri: list[Row] = field(default_factory=list)
    reference: list[Row] = field(default_factory=list)
    composite: list[Row] = field(default_factory=list)

    def tables(self) -> dict[str, list[Row]]:
        return {
            "idx_token": self.token,
            "idx_string": self.string,
            "idx_date": self.date,
            "idx_number": self.number,
            "idx_quantity": self.quantity,
            "idx_uri": self.uri,
            "idx_reference": self.reference,
            "idx_composite": self.composite,
        }


@dataclass(frozen=True)
class PlannedParam:
    param: SearchParam
    branches: tuple[Branch, ...]
    components: tuple[tuple[str, tuple[Branch, ...]], ...] = ()  # composite: (type, relative branches)


def plan_param(param: SearchParam) -> PlannedParam:
    components: tuple[tuple[str, tuple[Branch, ...]], ...] = ()
    if param.type == "composite":
        kinds = component_types(param)
        components = tuple(
            (kind, compile_expression(expr))
            for kind, (_url, expr) in zip(kinds, param.components, strict=True)
        )
    return PlannedParam(param, compile_expression(param.expression), components)


def index_plan(rtype: ResourceType) -> list[PlannedParam]:
    if rtype.index_plan is None:
        rtype.index_plan = [
            plan_param(p) for p in rtype.search_params.values() if p.code not in ENGINE_PARAMS
        ]
    plan: list[PlannedParam] = rtype.index_plan
    return plan


class _Builder:
    """Collects rows for one resource; `base` is what every row of a parameter shares."""

    def __init__(self, res_type: str, local_base: str) -> None:
        self.res_type = res_type
        self.local_base = local_base
        self.rows = IndexRows()
        self._seen: set[tuple[Any, ...]] = set()

    def _base(self, param: str) -> Row:
        return {
            "res_type": self.res_type,
            "param": param,
            "hash_identity": identity_hash(self.res_type, param),
        }

    def _once(self, key: tuple[Any, ...]) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def token(self, param: str, system: str | None, code: str | None, presence: bool = False) -> None:
        if code is None and system is None and not presence:
            return
        if not self._once(("t", param, system, code)):
            return
        sys_text, code_text = system or "", code or ""
        self.rows.token.append(
            {
                **self._base(param),
                "system": system,
                "code": code,
                "hash_value": hash64(self.res_type, param, code_text),
                "hash_sys_value": hash64(self.res_type, param, sys_text, code_text),
                "hash_sys": hash64(self.res_type, param, sys_text),
            }
        )

    def string(self, param: str, value: str) -> None:
        norm = normalize_string(value)
        if not norm or not self._once(("s", param, value)):
            return
        self.rows.string.append(
            {
                **self._base(param),
                "value_norm": norm,
                "value_exact": value,
            }
        )

    def date(self, param: str, low: int, high: int) -> None:
        if self._once(("d", param, low, high)):
            self.rows.date.append({**self._base(param), "low": low, "high": high})

    def number(self, param: str, value: float) -> None:
        if self._once(("n", param, value)):
            self.rows.number.append({**self._base(param), "value": value})

    def quantity(
        self, param: str, value: float, system: str | None, code: str | None, unit: str | None
    ) -> None:
        if not self._once(("q", param, value, system, code, unit)):
            return
        self.rows.quantity.append(
            {
                **self._base(param),
                "value": value,
                "system": system,
                "code": code,
                "unit": unit,
                "hash_sys_code": hash64(self.res_type, param, system or "", code or unit or ""),
                "hash_code": hash64(self.res_type, param, code or unit or ""),
            }
        )

    def uri(self, param: str, value: str) -> None:
        if self._once(("u", param, value)):
            self.rows.uri.append(
                {**self._base(param), "value": value, "hash_value": hash64(self.res_type, param, value)}
            )

    def reference(self, param: str, target_type: str | None, target_id: str | None, url: str | None) -> None:
        if not self._once(("r", param, target_type, target_id, url)):
            return
        local = f"{target_type}/{target_id}" if target_type and target_id else (url or "")
        self.rows.reference.append(
            {
                **self._base(param),
                "target_type": target_type,
                "target_id": target_id,
                "url": url,
                "hash_target": hash64(self.res_type, param, local),
                "hash_target_id": hash64(self.res_type, param, target_id or url or ""),
            }
        )


@lru_cache(maxsize=8192)
def identity_hash(res_type: str, param: str) -> int:
    return hash64(res_type, param)  # a few thousand (type, parameter) pairs, hashed for every index row


def split_reference(reference: str) -> tuple[str | None, str | None, str | None]:
    """'Patient/1', 'Patient/1/_history/2' or 'http://x/fhir/Patient/1' -> (type, id, absolute url or None)."""
    if reference.startswith("#") or reference.startswith("urn:"):
        return None, None, reference
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    absolute = "://" in reference
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha():
        return parts[-2], parts[-1], reference if absolute else None
    return None, None, reference


def _token_values(builder: _Builder, param: str, value: Any) -> None:
    if isinstance(value, bool):
        builder.token(param, None, "true" if value else "false")
    elif isinstance(value, str):
        builder.token(param, None, value)
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "value" not in value and "code" not in value):
            codings = [c for c in value.get("coding") or [] if isinstance(c, dict)]
            for coding in codings:
                _coding(builder, param, coding)
            # Decided by the concept, not by counting new rows: a concept met twice (Observation's
            # dataAbsentReason and a component's) adds no new rows the second time but is still coded.
            if all(c.get("system") is None and c.get("code") is None for c in codings):
                # Only text (or codings without code and system): the element is present, so a row without
                # system and code keeps `:missing=true` from matching it; no token value looks it up.
                builder.token(param, None, None, presence=True)
            if isinstance(value.get("text"), str):
                builder.string(f"{param}:text", value["text"])
        elif "value" in value:
            if value.get("system") in CONTACT_SYSTEMS and "type" not in value:
                builder.token(param, None, value.get("value"))  # ContactPoint: the token is the value
            else:  # Identifier
                builder.token(param, value.get("system"), value.get("value"))
                _identifier_type(builder, param, value)
        else:
            _coding(builder, param, value)


def _coding(builder: _Builder, param: str, coding: Any) -> None:
    if isinstance(coding, dict):
        builder.token(param, coding.get("system"), coding.get("code"))
        if isinstance(coding.get("display"), str):
            builder.string(f"{param}:text", coding["display"])


def _identifier_type(builder: _Builder, param: str, identifier: dict[str, Any]) -> None:
    """Rows for :of-type (type system|code|value) and :text (type text)."""
    id_type = identifier.get("type")
    if not isinstance(id_type, dict):
        return
    for coding in id_type.get("coding") or []:
        if isinstance(coding, dict) and coding.get("code"):
            builder.token(
                f"{param}:of-type", coding.get("system"), f"{coding['code']}|{identifier.get('value', '')}"
            )
    if isinstance(id_type.get("text"), str):
        builder.string(f"{param}:text", id_type["text"])


def _string_values(builder: _Builder, param: str, value: Any) -> None:
    if isinstance(value, str):
        builder.string(param, value)
    elif isinstance(value, dict):
        parts = _HUMAN_NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
        found = False
        for key in parts:
            item = value.get(key)
            for text in item if isinstance(item, list) else [item]:
                if isinstance(text, str):
                    builder.string(param, text)
                    found = True
        if not found:
            for item in value.values():
                if isinstance(item, str):
                    builder.string(param, item)


def _date_values(builder: _Builder, param: str, value: Any) -> None:
    if isinstance(value, str):
        bounds = date_range(value)
        if bounds:
            builder.date(param, *bounds)
    elif isinstance(value, dict):
        if "start" in value or "end" in value:  # Period
            start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
            end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
            builder.date(param, start[0] if start else MIN_TIME, end[1] if end else MAX_TIME)
        elif "event" in value or "repeat" in value:  # Timing
            ranges = [date_range(e) for e in value.get("event") or [] if isinstance(e, str)]
            bounds_period = (value.get("repeat") or {}).get("boundsPeriod")
            if ranges and all(ranges):
                builder.date(param, min(r[0] for r in ranges if r), max(r[1] for r in ranges if r))
            elif isinstance(bounds_period, dict):
                _date_values(builder, param, bounds_period)


def _quantity_values(builder: _Builder, param: str, value: Any) -> None:
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        number, code, unit = float(value["value"]), value.get("code"), value.get("unit")
        builder.quantity(param, number, value.get("system"), code, unit)
        if code and isinstance(unit, str) and unit != code:
            # `5.4||unit` matches either the coded unit or the stated human unit (R4 3.1.1.4.8), but a row's
            # hash_code holds only one of them: the human unit gets a row of its own, without system or
            # code, so that `5.4|system|code` still only matches the coded unit.
            builder.quantity(param, number, None, None, unit)


def _target(builder: _Builder, reference: str) -> tuple[str | None, str | None, str | None]:
    return reference_target(reference, builder.local_base)


def reference_target(reference: str, base: str) -> tuple[str | None, str | None, str | None]:
    """(type, id, url) of a reference. An absolute URL on this server's base is a local reference; any
    other absolute URL stays a URL: http://other.example/fhir/Patient/1 is not this server's Patient/1
    (it must not join chains, includes or a local patient's compartment)."""
    if base and reference.startswith(base + "/"):
        reference = reference[len(base) + 1 :]
    target_type, target_id, url = split_reference(reference)
    if url is not None:
        return None, None, url
    return target_type, target_id, None


def _reference_values(builder: _Builder, param: str, value: Any) -> None:
    if isinstance(value, str):  # canonical
        builder.reference(param, *_target(builder, value))
        return
    if not isinstance(value, dict):
        return
    reference = value.get("reference")
    if isinstance(reference, str) and not reference.startswith("#"):
        builder.reference(param, *_target(builder, reference))
    else:
        # Only an identifier, a display or a contained "#id": the element is still present, so a row
        # without a target keeps `:missing=true` from matching it. It has no target type, id or url, so
        # it never matches a reference value, a chain, an include, _has or a compartment.
        builder.reference(param, None, None, None)
    identifier = value.get("identifier")
    if isinstance(identifier, dict):  # for :identifier
        builder.token(f"{param}:identifier", identifier.get("system"), identifier.get("value"))


def _node_rows(builder: _Builder, param: SearchParam, node: Node) -> None:
    value, kind = node.value, param.type
    if kind == "token":
        _token_values(builder, param.code, value)
    elif kind == "string":
        _string_values(builder, param.code, value)
    elif kind == "date":
        _date_values(builder, param.code, value)
    elif kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            builder.number(param.code, float(value))
    elif kind == "quantity":
        _quantity_values(builder, param.code, value)
    elif kind == "uri":
        if isinstance(value, str):
            builder.uri(param.code, value)
    elif kind == "reference":
        _reference_values(builder, param.code, value)


def index_rows(
    rtype: ResourceType, resource: dict[str, Any], local_base: str = "", only: frozenset[str] | None = None
) -> IndexRows:
    """Index rows of a resource; `local_base` is this server's base URL (references on it are local).
    With `only`, the rows of those parameters alone (a resource judged against criteria naming them)."""
    builder = _Builder(rtype.name, local_base)
    for planned in index_plan(rtype):
        if only is not None and planned.param.code not in only:
            continue
        for node in evaluate(planned.branches, resource):
            if planned.components:
                builder.rows.composite.extend(composite_rows(rtype.name, planned, node.value))
            else:
                _node_rows(builder, planned.param, node)
    return builder.rows


def value_rows(res_type: str, param: SearchParam, values: Iterable[Any], local_base: str = "") -> IndexRows:
    """The rows of a (non-composite) parameter for the elements its expression selected: indexing after
    evaluation, so that elements selected by another evaluator (the differential test's) index the same way."""
    builder = _Builder(res_type, local_base)
    for value in values:
        _node_rows(builder, param, Node(value))
    return builder.rows
