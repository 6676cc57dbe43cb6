"""The index's FHIRPath subset (app/fhir/search/fhirpath.py) checked against fhirpathpy over the R4 examples.

For every R4 search parameter with an expression the subset compiles, and every official example
(npm `hl7.fhir.r4.examples@4.0.1`) of a type the parameter applies to, both evaluators run the expression
and two things must agree:

- the elements each selects, as JSON values (a set: FHIRPath's `|` drops duplicates, the index too);
- the index rows app.fhir.search.extract makes of those elements for the parameter's type (tokens,
  strings, date ranges, quantities, references, ...; for a composite, the rows of both components
  evaluated on each selected element), so a difference is also judged by what search would see.

fhirpathpy has no `resolve()`: a stand-in resolves a literal reference to a stub of the type it names,
and `#id` to the contained resource. A difference that is fhirpathpy's, or deliberate, is data in
EXPLAINED with its reason; an entry whose difference no longer shows fails the test as stale. Every
difference of one resource type is reported in one failure message.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import fhirpathpy
import orjson
import pytest
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from app.fhir.registry import SearchParam, component_types, composite_supported, standard_search_params
from app.fhir.search.composite import combine_rows, composite_rows
from app.fhir.search.extract import plan_param, value_rows
from app.fhir.search.fhirpath import ExpressionError, compile_expression, evaluate, same_type
from tests.external import missing

REPO = Path(__file__).resolve().parents[3]
EXAMPLES_DIR = Path(
    os.environ.get("HELSEBRO_R4_EXAMPLES_DIR") or REPO / "node_modules" / "hl7.fhir.r4.examples"
)
R4 = models["r4"]
SHOWN_PER_PARAMETER = 3  # examples shown in full for one parameter; the rest are only named

Rewrite = Callable[[str, str], str]  # (expression, resource type) -> the expression fhirpathpy is given


def concrete_root(expression: str, resource_type: str) -> str:
    return re.sub(r"\b(?:Resource|DomainResource)\.", f"{resource_type}.", expression)


def of_type(expression: str, _resource_type: str) -> str:
    """`x as T` and `x.as(T)` -> `x.ofType(T)`."""
    expression = re.sub(r"\.as\(\s*([A-Za-z]+)\s*\)", r".ofType(\1)", expression)
    return re.sub(r"\s+as\s+([A-Za-z]+)", r".ofType(\1)", expression)


def fhir_date_time(expression: str, _resource_type: str) -> str:
    return expression.replace(".as(DateTime)", ".as(dateTime)")


@dataclass(frozen=True)
class Explained:
    """A difference with its reason; with `rewrite`, fhirpathpy is also given an expression that avoids
    it, and the results must then agree."""

    reason: str
    rewrite: Rewrite | None = None


_ROOT = Explained(
    "fhirpathpy bug: a type name at the root matches only the exact resourceType, so `Resource.id` finds "
    "nothing on a Patient; compared as `Patient.id`",
    concrete_root,
)
_AS_MANY = Explained(
    "fhirpathpy follows FHIRPath N1, where `as` on more than one item is an error; these R4 expressions "
    "apply it to repeating elements and mean a filter, which the index does; compared with ofType()",
    of_type,
)
_SYSTEM_DATE_TIME = Explained(
    "R4 writes `value.as(DateTime)`, FHIRPath's System type, which fhirpathpy does not see in a FHIR "
    "dateTime; the index compares type names case-insensitively and takes the valueDateTime R4 means; "
    "compared with `as(dateTime)`",
    fhir_date_time,
)

EXPLAINED: dict[tuple[str, str], Explained] = {
    ("Resource", "_id"): _ROOT,
    ("Resource", "_lastUpdated"): _ROOT,
    ("Resource", "_profile"): _ROOT,
    ("Resource", "_security"): _ROOT,
    ("ActivityDefinition", "context"): _AS_MANY,
    ("ActivityDefinition", "context-quantity"): _AS_MANY,
    ("Composition", "related-id"): _AS_MANY,
    ("Composition", "related-ref"): _AS_MANY,
    ("Group", "value"): _AS_MANY,
    ("Library", "context"): _AS_MANY,
    ("Library", "context-quantity"): _AS_MANY,
    ("Measure", "context"): _AS_MANY,
    ("Measure", "context-quantity"): _AS_MANY,
    ("Medication", "ingredient"): _AS_MANY,
    ("Medication", "ingredient-code"): _AS_MANY,
    ("Observation", "code-value-date"): _SYSTEM_DATE_TIME,
    ("Observation", "combo-value-concept"): _AS_MANY,
    ("Observation", "combo-value-quantity"): _AS_MANY,
    ("Observation", "component-value-concept"): _AS_MANY,
    ("Observation", "component-value-quantity"): _AS_MANY,
    ("PlanDefinition", "context"): _AS_MANY,
    ("PlanDefinition", "context-quantity"): _AS_MANY,
    ("Substance", "code"): _AS_MANY,
    ("Substance", "substance-reference"): _AS_MANY,
}

# Outside the subset: the registry does not offer these, so there is nothing to compare (nor for the three
# without an expression: _text, _content, _query).
NOT_COMPILED = {
    ("MolecularSequence", "chromosome-variant-coordinate"),  # components use %resource
    ("MolecularSequence", "referenceseqid-variant-coordinate"),
}


def _parameters() -> dict[str, list[SearchParam]]:
    by_base: dict[str, list[SearchParam]] = defaultdict(list)
    for param, base in standard_search_params():
        if param.expression and (base, param.code) not in NOT_COMPILED:
            by_base[base].append(param)
    return dict(sorted(by_base.items()))


PARAMETERS = _parameters()


@cache
def examples() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Resource type -> (file name, resource) of every example, loaded once per run."""
    if not EXAMPLES_DIR.is_dir():
        missing("R4 examples not found: run `npm ci` (or set HELSEBRO_R4_EXAMPLES_DIR)")
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        resource = orjson.loads(path.read_bytes())
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            by_type[resource["resourceType"]].append((path.name, resource))
    return dict(by_type)


# fhirpathpy's side ---------------------------------------------------------------------------------


class _Resolver:
    """`resolve()` for fhirpathpy, which has none: `Type/id` (relative, absolute or versioned) resolves
    to a stub of that type, `#id` to the contained resource of the resource being evaluated."""

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}

    def __call__(self, inputs: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in inputs:
            reference = item.get("reference") if isinstance(item, dict) else item
            if not isinstance(reference, str):
                continue
            if reference.startswith("#"):
                local_id = reference[1:]
                found = [self.root] if not local_id else self.root.get("contained") or []
                out.extend(_node(r) for r in found if not local_id or r.get("id") == local_id)
                continue
            parts = reference.split("/")
            if len(parts) >= 4 and parts[-2] == "_history":
                parts = parts[:-2]
            if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha():
                out.append(_node({"resourceType": parts[-2], "id": parts[-1]}))
        return out


def _node(data: Any, path: str | None = None) -> Any:
    """A fhirpathpy node: a resource finds its type in `resourceType`, an element needs its path."""
    return ResourceNode.create_node(data, path)  # type: ignore[no-untyped-call]


RESOLVER = _Resolver()
_RESOLVE = {"resolve": {"fn": RESOLVER, "arity": {0: []}}}


@cache
def _fhirpathpy(expression: str, raw: bool = False) -> Callable[..., list[Any]]:
    options = {"userInvocationTable": _RESOLVE, "returnRawData": raw}
    compiled: Callable[..., list[Any]] = fhirpathpy.compile(expression, R4, options)
    return compiled


def plain(value: Any) -> Any:
    """fhirpathpy's values as JSON gives them (it turns the JSON's floats into Decimal)."""
    if isinstance(value, ResourceNode):
        value = value.data
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _only_extension(value: Any) -> bool:
    """fhirpathpy also yields a primitive's `_element` (its extensions); raw results keep them."""
    return (
        isinstance(value, ResourceNode) and isinstance(value.data, dict) and list(value.data) == ["extension"]
    )


def theirs(
    param: SearchParam, resource: dict[str, Any], rewrite: Rewrite | None = None
) -> tuple[list[Any], list[Any]]:
    """(elements, index rows) by fhirpathpy, given each expression through `rewrite` when there is one."""
    RESOLVER.root = resource
    rtype = resource["resourceType"]

    def given(expression: str) -> str:
        return rewrite(expression, rtype) if rewrite else expression

    if param.type != "composite":
        elements = [plain(v) for v in _fhirpathpy(given(param.expression))(resource)]
        return elements, _rows(value_rows(rtype, param, elements).tables())
    # fhirpathpy's `|` drops its items' types, which the components need (`value.as(Quantity)`): the
    # roots are taken branch by branch (R4's composite roots are plain paths).
    roots = [
        node
        for branch in given(param.expression).split("|")
        for node in _fhirpathpy(branch.strip(), raw=True)(resource)
        if not _only_extension(node)
    ]
    rows = []
    if composite_supported(param):
        kinds = component_types(param)
        for node in roots:
            element = _node(node.data, node.path)
            firsts, seconds = (
                [plain(v) for v in _fhirpathpy(given(e))(element)] for _url, e in param.components
            )
            rows.extend(combine_rows(rtype, param.code, (kinds[0], kinds[1]), firsts, seconds))
    return [plain(node) for node in roots], _rows({"idx_composite": rows})


# Ours -------------------------------------------------------------------------------------------------


def ours(param: SearchParam, resource: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(elements, index rows) by the project's evaluator and extraction."""
    rtype = resource["resourceType"]
    nodes = evaluate(compile_expression(param.expression), resource)
    elements = [node.value for node in nodes]
    if param.type != "composite":
        return elements, _rows(value_rows(rtype, param, elements).tables())
    rows = []
    if composite_supported(param):
        planned = plan_param(param)
        rows = [row for value in elements for row in composite_rows(rtype, planned, value)]
    return elements, _rows({"idx_composite": rows})


# Comparing -------------------------------------------------------------------------------------------

_HIDDEN = ("res_type", "param", "hash_identity")


def _rows(tables: dict[str, list[dict[str, Any]]]) -> list[Any]:
    return [
        (table[4:], tuple((k, v) for k, v in row.items() if k not in _HIDDEN))
        for table, rows in tables.items()
        for row in rows
    ]


def _keys(values: list[Any]) -> set[bytes]:
    return {orjson.dumps(value, option=orjson.OPT_SORT_KEYS) for value in values}


def _show(items: set[bytes]) -> str:
    text = ", ".join(sorted(item.decode() for item in items)) or "-"
    return text if len(text) <= 240 else text[:237] + "..."


def _hash_column(name: str) -> bool:
    return name.startswith(("hash", "first_")) or name in ("second_a", "second_b")


def _show_rows(rows: set[Any]) -> str:
    """Rows by their readable columns (a composite's tokens are only hashes, and are counted)."""
    shown = []
    for table, columns in sorted(rows, key=repr):
        values = [
            f"{k}={v}" for k, v in columns if not _hash_column(k) and (v is not None or table != "composite")
        ]
        hashes = sum(1 for k, v in columns if _hash_column(k) and v is not None)
        shown.append(
            f"{table}({', '.join([*values, f'{hashes} hashes'] if table == 'composite' else values)})"
        )
    text = "; ".join(shown) or "-"
    return text if len(text) <= 240 else text[:237] + "..."


def difference(mine: tuple[list[Any], list[Any]], other: tuple[list[Any], list[Any]] | str) -> str | None:
    """How fhirpathpy's result differs from ours, or None."""
    if isinstance(other, str):
        return f"fhirpathpy failed: {other}"
    (elements, rows), (their_elements, their_rows) = mine, other
    a, b = _keys(elements), _keys(their_elements)
    lines = []
    if a != b:
        lines.append(f"elements  ours only: {_show(a - b)}\n      fhirpathpy only: {_show(b - a)}")
    if set(rows) != set(their_rows):
        lines.append(
            f"rows      ours only: {_show_rows(set(rows) - set(their_rows))}\n"
            f"      fhirpathpy only: {_show_rows(set(their_rows) - set(rows))}"
        )
    return "\n    ".join(lines) or None


def _try_theirs(
    param: SearchParam, resource: dict[str, Any], rewrite: Rewrite | None = None
) -> tuple[list[Any], list[Any]] | str:
    try:
        return theirs(param, resource, rewrite)
    except Exception as error:  # fhirpathpy's errors are plain Exceptions
        return f"{type(error).__name__}: {str(error)[:120]}"


@dataclass
class Report:
    base: str
    pairs: int = 0
    differences: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # param -> (file, what)
    stale: list[str] = field(default_factory=list)

    def message(self) -> str:
        count = sum(len(found) for found in self.differences.values())
        lines = [
            f"{self.base}: {count} difference(s) from fhirpathpy over {self.pairs} (parameter, example) pairs"
        ]
        for label, found in self.differences.items():
            lines.append(f"{label}  ({len(found)} example(s))")
            for name, what in found[:SHOWN_PER_PARAMETER]:
                lines.append(f"  {name}\n    {what}")
            if len(found) > SHOWN_PER_PARAMETER:
                lines.append(f"  ... and {', '.join(n for n, _ in found[SHOWN_PER_PARAMETER:])}")
        lines.extend(f"stale EXPLAINED entry, no longer differs: {entry}" for entry in self.stale)
        return "\n".join(lines)


def compare(base: str, by_type: dict[str, list[tuple[str, dict[str, Any]]]]) -> Report:
    report = Report(base)
    if base in ("Resource", "DomainResource"):
        targets = [example for found in by_type.values() for example in found]
    else:
        targets = by_type.get(base, [])
    for param in PARAMETERS.get(base, []):
        explained = EXPLAINED.get((base, param.code))
        label = f"{base}.{param.code} ({param.type}) `{param.expression}`"
        explained_seen = False
        for name, resource in targets:
            report.pairs += 1
            mine = ours(param, resource)
            if explained is not None:
                what = difference(mine, _try_theirs(param, resource))
                explained_seen = explained_seen or what is not None
                if explained.rewrite is None:
                    continue
            what = difference(mine, _try_theirs(param, resource, explained.rewrite if explained else None))
            if what is not None:
                report.differences.setdefault(label, []).append((name, what))
        if explained is not None and not explained_seen:
            report.stale.append(f"{label}: {explained.reason}")
    return report


@pytest.mark.parametrize("base", list(PARAMETERS))
def test_subset_matches_fhirpathpy(base: str) -> None:
    report = compare(base, examples())
    if report.differences or report.stale:
        pytest.fail(report.message(), pytrace=False)


def test_explained_entries_name_parameters() -> None:
    unknown = [key for key in EXPLAINED if not any(p.code == key[1] for p in PARAMETERS.get(key[0], []))]
    assert not unknown


def test_not_compiled_is_exactly_what_the_subset_refuses() -> None:
    refused = set()
    for param, base in standard_search_params():
        if not param.expression:
            continue
        expressions = [param.expression, *(expr for _url, expr in param.components)]
        try:
            for expression in expressions:
                compile_expression(expression)
        except ExpressionError:
            refused.add((base, param.code))
    assert refused == NOT_COMPILED


def test_the_examples_are_the_r4_examples() -> None:
    found = examples()
    assert sum(len(v) for v in found.values()) > 2_000, EXAMPLES_DIR
    assert {"Patient", "Observation"} <= set(found)


def test_as_knows_the_r4_specialisations() -> None:
    """The evaluator's own table of specialisations agrees with fhirpathpy's R4 model on every data type."""
    parents: dict[str, str] = R4["type2Parent"]
    datatypes = [t for t in parents if _ancestors(t, parents)[-1:] == ["Element"] and t[:1] != "_"]
    assert len(datatypes) > 50
    for child in datatypes:
        for wanted in (t for t in datatypes if t not in ("Element", "BackboneElement")):
            expected = wanted == child or wanted in _ancestors(child, parents)
            assert same_type(child, wanted) is expected, (child, wanted)


def _ancestors(type_name: str, parents: dict[str, str]) -> list[str]:
    out = []
    while type_name in parents:
        type_name = parents[type_name]
        out.append(type_name)
    return out
