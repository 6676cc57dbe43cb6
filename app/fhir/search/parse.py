"""Search query -> typed clauses for the store, plus the result parameters (_sort, _count, _include ...).

Unknown parameters and modifiers are collected as warnings (reported in the Bundle) unless the client
asked for strict handling (Prefer: handling=strict), then they are a 400.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from app.fhir.outcome import Category, FhirError
from app.fhir.registry import Registry, ResourceType, SearchParam, component_types
from app.fhir.search.composite import first_hashes, second_token_hashes
from app.fhir.search.extract import identity_hash, split_reference
from app.fhir.search.hashing import hash64
from app.fhir.search.normalize import normalize_string
from app.fhir.search.values import (
    date_condition,
    datetime_condition,
    invalid,
    number_condition,
    split_escaped,
    split_or,
)
from app.fhir.validate import CONTROL_CHARACTER
from app.store.query import (
    AnyOf,
    Chain,
    Clause,
    CompositeAlternative,
    CompositeMatch,
    DateMatch,
    Has,
    IdIn,
    LastUpdatedMatch,
    Missing,
    Not,
    NumberMatch,
    QuantityCondition,
    QuantityMatch,
    ReferenceMatch,
    StringMatch,
    TokenHashIn,
    UriMatch,
    ValueSetIn,
)

RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        "_include",
        "_revinclude",
        "_contained",
        "_containedType",
        "_format",
        "_pretty",
        "_cursor",
        "_type",
    }
)
_TABLE_OF = {
    "token": "idx_token",
    "string": "idx_string",
    "date": "idx_date",
    "number": "idx_number",
    "quantity": "idx_quantity",
    "uri": "idx_uri",
    "reference": "idx_reference",
    "composite": "idx_composite",
}
_MODIFIERS = {
    "token": {"not", "text", "of-type", "missing", "in", "not-in"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"above", "below", "missing"},
    "reference": {"identifier", "missing"},
    "composite": {"missing"},
}


class Unsupported(Exception):
    """A parameter or modifier the server does not support (reported, or 400 under strict handling)."""


@dataclass(frozen=True)
class SearchLimits:
    """The most name=value pairs one search may have, and the most values over its criteria (each comma
    alternative counts). Every AND'ed parameter is another join to plan: at a few hundred, PostgreSQL
    plans for seconds to minutes and SQLite's expression depth overflows. The defaults are those of
    Settings.search_max_parameters / search_max_values."""

    max_parameters: int = 50
    max_values: int = 200


@dataclass
class ParseContext:
    registry: Registry
    base_url: str
    warnings: list[str] = field(default_factory=list)
    now_micros: int = field(default_factory=lambda: int(time.time() * 1_000_000))
    limits: SearchLimits = field(default_factory=SearchLimits)


def _token_clause(rtype: ResourceType, code: str, values: list[str], negate: bool = False) -> Clause:
    by_column: dict[str, list[int]] = {}
    pairs: list[tuple[str, str]] = []  # (system, code) of system|code values
    for alt in values:
        pieces = split_escaped(alt, "|")
        if len(pieces) == 1:
            by_column.setdefault("hash_value", []).append(hash64(rtype.name, code, pieces[0]))
        elif len(pieces) == 2 and pieces[1] == "":
            by_column.setdefault("hash_sys", []).append(hash64(rtype.name, code, pieces[0]))
        elif len(pieces) == 2:
            pairs.append((pieces[0], pieces[1]))
        elif len(pieces) == 3 and code.endswith(":of-type"):  # system|code|value
            system, type_code, value = pieces
            pairs.append((system, f"{type_code}|{value}"))
        else:
            raise invalid(code, alt, "expected [system|]code")
    groups = [TokenHashIn(col, tuple(h)) for col, h in by_column.items()]  # type: ignore[arg-type]
    if pairs:
        groups.append(system_code_hashes(rtype.name, code, pairs))
    if len(groups) == 1:
        only = groups[0]
        return TokenHashIn(only.column, only.hashes, negate, only.value_hashes)
    either = AnyOf(tuple((g,) for g in groups))
    return Not(either) if negate else either


def system_code_hashes(res_type: str, param: str, pairs: Sequence[tuple[str, str]]) -> TokenHashIn:
    """Token equality on system|code pairs (also :in a value set's codes)."""
    return TokenHashIn(
        "hash_sys_value",
        tuple(hash64(res_type, param, system, code) for system, code in pairs),
        value_hashes=tuple(dict.fromkeys(hash64(res_type, param, code) for _system, code in pairs)),
    )


def _string_clause(rtype: ResourceType, code: str, modifier: str | None, values: list[str]) -> Clause:
    plain = [split_escaped(v, "\x00")[0] for v in values]
    if modifier == "exact":
        exact = tuple(v for v in plain if normalize_string(v))  # what has no normal form was not indexed
        normalized = tuple(dict.fromkeys(normalize_string(v) for v in exact))
        return StringMatch(identity_hash(rtype.name, code), "exact", normalized, exact)
    mode = "contains" if modifier == "contains" else "prefix"
    normalized = tuple(n for n in (normalize_string(v) for v in plain) if n)
    if not normalized:
        raise invalid(code, ",".join(values), "an empty string matches nothing useful")
    return StringMatch(identity_hash(rtype.name, code), mode, normalized)  # type: ignore[arg-type]


def _quantity_clause(rtype: ResourceType, code: str, values: list[str]) -> Clause:
    conditions = []
    for alt in values:
        pieces = split_escaped(alt, "|")
        condition = number_condition(code, pieces[0])
        if len(pieces) == 1 or (len(pieces) == 3 and not pieces[1] and not pieces[2]):
            conditions.append(QuantityCondition(condition, None))
        elif len(pieces) == 3 and not pieces[1]:
            conditions.append(QuantityCondition(condition, "hash_code", hash64(rtype.name, code, pieces[2])))
        elif len(pieces) == 3:
            unit_hash = hash64(rtype.name, code, pieces[1], pieces[2])
            conditions.append(QuantityCondition(condition, "hash_sys_code", unit_hash))
        else:
            raise invalid(code, alt, "expected [prefix]number[|system|code]")
    return QuantityMatch(identity_hash(rtype.name, code), tuple(conditions))


def _reference_clause(
    ctx: ParseContext, rtype: ResourceType, param: SearchParam, type_modifier: str | None, values: list[str]
) -> Clause:
    target_hashes: list[int] = []
    id_hashes: list[int] = []
    for alt in (split_escaped(v, "\x00")[0] for v in values):
        text = alt[len(ctx.base_url) + 1 :] if ctx.base_url and alt.startswith(ctx.base_url + "/") else alt
        target_type, target_id, url = split_reference(text)
        if target_type and target_id and url is None:  # a local reference (this server's base was cut off)
            if type_modifier and target_type != type_modifier:
                raise invalid(param.code, alt, f"the value's type is not {type_modifier}")
            target_hashes.append(hash64(rtype.name, param.code, f"{target_type}/{target_id}"))
        elif url:
            if "/" not in url and ":" not in url:  # a bare id
                if type_modifier:
                    target_hashes.append(hash64(rtype.name, param.code, f"{type_modifier}/{url}"))
                else:
                    id_hashes.append(hash64(rtype.name, param.code, url))
            else:
                target_hashes.append(hash64(rtype.name, param.code, url))
    groups: list[tuple[Clause, ...]] = []
    if target_hashes:
        groups.append((ReferenceMatch("hash_target", tuple(target_hashes)),))
    if id_hashes:
        groups.append((ReferenceMatch("hash_target_id", tuple(id_hashes)),))
    return groups[0][0] if len(groups) == 1 else AnyOf(tuple(groups))


def _chain(
    ctx: ParseContext,
    rtype: ResourceType,
    param: SearchParam,
    type_modifier: str | None,
    rest: str,
    value: str,
) -> Clause:
    targets = (type_modifier,) if type_modifier else param.targets
    alternatives = []
    for target_name in targets:
        target = ctx.registry.get(target_name)
        if target is None:
            continue
        try:
            inner = parse_param(ctx, target, rest, value)
        except Unsupported:
            continue  # the chained parameter does not exist on this target type
        alternatives.append((Chain(identity_hash(rtype.name, param.code), (target_name,), (inner,)),))
    if not alternatives:
        raise Unsupported(f"chained parameter '{param.code}.{rest}' matches no target type")
    return alternatives[0][0] if len(alternatives) == 1 else AnyOf(tuple(alternatives))


def _has(ctx: ParseContext, name: str, value: str) -> Clause:
    # _has:Observation:patient:code=x  (the rest may itself start with _has:)
    pieces = name.split(":", 3)
    if len(pieces) < 4:
        raise invalid(name, value, "expected _has:Type:reference-param:search-param")
    _, source_name, ref_code, rest = pieces
    source = ctx.registry.get(source_name)
    if source is None or ref_code not in source.search_params:
        raise Unsupported(f"'{name}': unknown type or reference parameter")
    return Has(source_name, identity_hash(source_name, ref_code), (parse_param(ctx, source, rest, value),))


def parse_param(ctx: ParseContext, rtype: ResourceType, name: str, value: str) -> Clause:
    """One `name=value` of a search against `rtype`."""
    if name.startswith("_has:"):
        return _has(ctx, name, value)
    head, dot, rest = name.partition(".")
    code, _, modifier_text = head.partition(":")
    modifier = modifier_text or None
    param = rtype.search_params.get(code)
    if param is None:
        raise Unsupported(f"Unknown search parameter '{code}' for {rtype.name}")
    if dot:
        if param.type != "reference":
            raise invalid(name, value, "only reference parameters can be chained")
        return _chain(ctx, rtype, param, modifier, rest, value)
    values = split_or(value)
    if modifier == "missing":
        if value not in ("true", "false"):
            raise invalid(name, value, ":missing takes true or false")
        if code in ("_id", "_lastUpdated"):  # every resource has both: missing=true matches nothing
            return IdIn(()) if value == "true" else Not(IdIn(()))
        return Missing(_TABLE_OF[param.type], identity_hash(rtype.name, code), value == "true")
    if code == "_id":
        if modifier not in (None, "not"):
            raise Unsupported(f"Modifier ':{modifier}' is not supported on _id")
        ids = IdIn(tuple(split_escaped(v, "\x00")[0] for v in values))
        return Not(ids) if modifier == "not" else ids
    if code == "_lastUpdated":
        if modifier:
            raise Unsupported(f"Modifier ':{modifier}' is not supported on _lastUpdated")
        return LastUpdatedMatch(
            tuple(datetime_condition(date_condition(code, v, ctx.now_micros)) for v in values)
        )
    if modifier and param.type == "reference" and modifier[:1].isupper():
        if modifier not in param.targets and param.targets:
            raise invalid(name, value, f"{modifier} is not a target of {code}")
        return _reference_clause(ctx, rtype, param, modifier, values)
    if modifier and modifier not in _MODIFIERS.get(param.type, set()):
        raise Unsupported(f"Modifier ':{modifier}' is not supported on {param.type} parameter '{code}'")
    return _typed_clause(ctx, rtype, param, modifier, values)


def _typed_clause(
    ctx: ParseContext, rtype: ResourceType, param: SearchParam, modifier: str | None, values: list[str]
) -> Clause:
    code = param.code
    if any(v == "" for v in values):
        raise invalid(code, ",".join(values), "empty value")
    match param.type:
        case "token":
            if modifier == "text":
                return _string_clause(rtype, f"{code}:text", None, values)
            if modifier == "of-type":
                return _token_clause(rtype, f"{code}:of-type", values)
            if modifier in ("in", "not-in"):
                if len(values) != 1:
                    raise invalid(code, ",".join(values), f":{modifier} takes one value set")
                return ValueSetIn(rtype.name, code, split_escaped(values[0], "\x00")[0], modifier == "not-in")
            return _token_clause(rtype, code, values, negate=modifier == "not")
        case "string":
            return _string_clause(rtype, code, modifier, values)
        case "date":
            return DateMatch(
                identity_hash(rtype.name, code),
                tuple(date_condition(code, v, ctx.now_micros) for v in values),
            )
        case "number":
            return NumberMatch(
                identity_hash(rtype.name, code), tuple(number_condition(code, v) for v in values)
            )
        case "quantity":
            return _quantity_clause(rtype, code, values)
        case "uri":
            plain = tuple(split_escaped(v, "\x00")[0] for v in values)
            if modifier in ("above", "below"):
                return UriMatch(identity_hash(rtype.name, code), modifier, plain)  # type: ignore[arg-type]
            return UriMatch(
                identity_hash(rtype.name, code),
                "eq",
                plain,
                tuple(hash64(rtype.name, code, v) for v in plain),
            )
        case "reference":
            if modifier == "identifier":
                return _token_clause(rtype, f"{code}:identifier", values)
            return _reference_clause(ctx, rtype, param, None, values)
        case "composite":
            return _composite_clause(rtype, param, values)
    raise Unsupported(f"Search parameter type '{param.type}' of '{code}' is not supported")


def _composite_clause(rtype: ResourceType, param: SearchParam, values: list[str]) -> Clause:
    first_kind, second_kind = component_types(param)
    code = param.code
    alternatives = []
    for alt in values:
        parts = split_escaped(alt, "$")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise invalid(code, alt, "a composite value is first$second")
        first = split_escaped(parts[0], "|")
        if first_kind == "reference":
            h = hash64(rtype.name, code, "1", parts[0])
            column, first_hash = "first_sys_value", h
        elif len(first) == 2:
            column, first_hash = "first_sys_value", first_hashes(rtype.name, code, first[0], first[1])[0]
        else:
            column, first_hash = "first_value", first_hashes(rtype.name, code, None, first[0])[1]
        alternatives.append(_composite_second(rtype, code, second_kind, parts[1], column, first_hash))
    return CompositeMatch(identity_hash(rtype.name, code), tuple(alternatives))


def _composite_second(
    rtype: ResourceType, code: str, kind: str, text: str, first_column: str, first_hash: int
) -> CompositeAlternative:
    first = cast(Literal["first_sys_value", "first_value"], first_column)
    pieces = split_escaped(text, "|")
    if kind == "token":
        if len(pieces) == 2:
            token_hash = second_token_hashes(rtype.name, code, pieces[0], pieces[1])[0]
            return CompositeAlternative(first, first_hash, "token", "second_a", token_hash)
        token_hash = second_token_hashes(rtype.name, code, None, pieces[0])[1]
        return CompositeAlternative(first, first_hash, "token", "second_b", token_hash)
    if kind == "quantity":
        condition = number_condition(code, pieces[0])
        if len(pieces) == 3 and pieces[2]:
            if pieces[1]:
                unit_hash = hash64(rtype.name, code, "2", pieces[1], pieces[2])
                return CompositeAlternative(first, first_hash, "quantity", "second_a", unit_hash, condition)
            unit_hash = hash64(rtype.name, code, "2", pieces[2])
            return CompositeAlternative(first, first_hash, "quantity", "second_b", unit_hash, condition)
        return CompositeAlternative(first, first_hash, "quantity", None, 0, condition)
    if kind == "date":
        return CompositeAlternative(
            first, first_hash, "date", None, 0, date_condition(code, text, int(time.time() * 1e6))
        )
    return CompositeAlternative(first, first_hash, "string", second_prefix=normalize_string(text))


def check_limits(limits: SearchLimits, pairs: list[tuple[str, str]]) -> None:
    """400 before any SQL is built for a search over the limits, or with control characters: no stored
    string holds them (validate.py refuses them), and PostgreSQL cannot take U+0000 as a parameter."""
    if len(pairs) > limits.max_parameters:
        raise FhirError(
            Category.INVALID,
            f"A search takes at most {limits.max_parameters} parameters; this one has {len(pairs)}",
            "too-costly",
        )
    values = 0
    for name, value in pairs:
        if CONTROL_CHARACTER.search(name) or CONTROL_CHARACTER.search(value):
            raise FhirError(
                Category.INVALID, f"Search parameter {name[:40]!a} contains a control character", "value"
            )
        if name.split(":", 1)[0] not in RESULT_PARAMS:
            values += value.count(",") + 1  # an upper bound of split_or's count (escaped commas too)
    if values > limits.max_values:
        raise FhirError(
            Category.INVALID,
            f"A search takes at most {limits.max_values} values (comma-separated alternatives count one "
            f"each); this one has {values}",
            "too-costly",
        )


def parse_clauses(
    ctx: ParseContext, rtype: ResourceType, pairs: list[tuple[str, str]], strict: bool
) -> list[Clause]:
    check_limits(ctx.limits, pairs)
    clauses: list[Clause] = []
    for name, value in pairs:
        if name.split(":", 1)[0] in RESULT_PARAMS:  # also _include:iterate, _revinclude:iterate
            continue
        try:
            clauses.append(parse_param(ctx, rtype, name, value))
        except Unsupported as exc:
            if strict:
                raise FhirError(Category.INVALID, str(exc), "not-supported") from None
            ctx.warnings.append(f"{exc}; the parameter was ignored")
    return clauses
