"""The FHIRPath subset of the R4 search-parameter expressions, compiled once and run on FHIR JSON dicts.

Supported: unions (`a | b`), paths (`Observation.subject`), choice types (`Observation.value` finds
`valueQuantity` etc.), `as Type` / `.as(Type)` / `.ofType(Type)` (a specialisation passes too: `canonical`
is a `uri`, `Age` a `Quantity`), `.where(resolve() is Type)` (by the reference's type; `#id` by the
contained resource's), `.where(field='literal')`, `.first()` and `.exists()`. Expressions outside this
subset fail to compile (ExpressionError); the registry marks their parameters as unsupported instead of
indexing them wrongly.

`as` filters each item of its input: the R4 expressions apply it to collections (`useContext.value as
Quantity`), which FHIRPath N1 makes an error, and the index wants every value.

Checked against fhirpathpy: tests/fhir/search/test_fhirpath_differential.py runs every parameter the
subset compiles on every official R4 example of its type (npm hl7.fhir.r4.examples 4.0.1, ~135,600
pairs) here and in fhirpathpy, and compares the elements selected and the index rows made of them.
- Fixed from what it found: `as uri` dropped a `canonical` (specialisations now pass: ConceptMap
  source-uri/target-uri); `resolve() is Patient` missed contained resources (`#newborn`); the generator
  lost R4's InsurancePlan `name | alias` (relative paths); a coded concept selected twice got a stray row
  without system and code (app/fhir/search/extract.py).
- Explained, as data in the test (an entry that stops differing fails it): fhirpathpy matches a root type
  name only against the exact resourceType (`Resource.id`); fhirpathpy makes `as` over several items an
  error, which the index reads as a filter; R4's `value.as(DateTime)` names the System type, which the
  index takes as the FHIR dateTime R4 means.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import fhir.resources.R4B as r4b


class ExpressionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Node:
    value: Any
    type_hint: str | None = None  # the choice-type suffix (Quantity, DateTime, ...) when known


@dataclass(frozen=True, slots=True)
class Child:
    name: str


@dataclass(frozen=True, slots=True)
class AsType:
    type_name: str


@dataclass(frozen=True, slots=True)
class ResolvesTo:
    type_name: str


@dataclass(frozen=True, slots=True)
class FieldEquals:
    field: str
    literal: str


@dataclass(frozen=True, slots=True)
class First:
    pass


@dataclass(frozen=True, slots=True)
class Index:
    index: int


@dataclass(frozen=True, slots=True)
class TruthyFlag:
    """`X.exists() and X != false` (Patient.deceased): one boolean node, true when X is set and not false."""

    name: str


Step = Child | AsType | ResolvesTo | FieldEquals | First | Index | TruthyFlag
Branch = tuple[str, tuple[Step, ...]]  # (root type name, steps)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEXED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]")
_TRUTHY = re.compile(r"([A-Za-z]+)\.([A-Za-z]+)\.exists\(\) and \1\.\2 != false")
_WHERE_RESOLVE = re.compile(r"where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)")
_WHERE_FIELD = re.compile(r"where\(\s*([A-Za-z]+)\s*=\s*'([^']*)'\s*\)")
_FUNC_TYPE = re.compile(r"(as|ofType)\(\s*([A-Za-z]+)\s*\)")


def _split_top(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == separator and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if depth < 0:
            return False
    return depth == 0


def _compile_branch(text: str) -> Branch:
    text = _strip_parens(text)
    if text.startswith("("):  # `(Observation.value as CodeableConcept).text`
        close = _closing_paren(text)
        root, prefix = _compile_branch(text[1:close])
        rest = text[close + 1 :].strip()
        if not rest.startswith("."):
            raise ExpressionError(f"unsupported expression '{text[:60]}'")
        _, more = _compile_branch(f"{root}{rest}")
        return root, prefix + more
    trailing_as: str | None = None
    if " as " in text:  # `Observation.value as Quantity`
        text, _, type_name = text.rpartition(" as ")
        text, trailing_as = _strip_parens(text), type_name.strip()
    pieces = _split_top(text, ".")
    root = pieces[0].strip()
    if not _NAME.fullmatch(root):
        raise ExpressionError(f"unsupported expression start '{root}'")
    steps: list[Step] = []
    for piece in (p.strip() for p in pieces[1:]):
        if _NAME.fullmatch(piece):
            steps.append(Child(piece))
        elif match := _INDEXED.fullmatch(piece):
            steps.extend((Child(match.group(1)), Index(int(match.group(2)))))
        elif match := _WHERE_RESOLVE.fullmatch(piece):
            steps.append(ResolvesTo(match.group(1)))
        elif match := _WHERE_FIELD.fullmatch(piece):
            steps.append(FieldEquals(match.group(1), match.group(2)))
        elif match := _FUNC_TYPE.fullmatch(piece):
            steps.append(AsType(match.group(2)))
        elif piece in ("first()",):
            steps.append(First())
        else:
            raise ExpressionError(f"unsupported FHIRPath step '{piece}'")
    if trailing_as:
        steps.append(AsType(trailing_as))
    return root, tuple(steps)


def _closing_paren(text: str) -> int:
    depth = 0
    for position, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if depth == 0:
            return position
    raise ExpressionError(f"unbalanced parentheses in '{text[:60]}'")


@cache
def compile_expression(expression: str) -> tuple[Branch, ...]:
    if not expression.strip():
        raise ExpressionError("empty expression")
    if match := _TRUTHY.fullmatch(expression.strip()):
        return ((match.group(1), (TruthyFlag(match.group(2)),)),)
    if " and " in expression or "!=" in expression or ".exists()" in expression:
        raise ExpressionError("boolean expressions are not index paths")
    return tuple(_compile_branch(branch) for branch in _split_top(expression, "|"))


@cache
def choice_names() -> frozenset[str]:
    """Every choice element's name in R4 (`value` of value[x], `effective`, `onset`, ...), from the FHIR
    models: only these names can stand for a suffixed key, so only they are looked for as a prefix."""
    names = set()
    for module in pkgutil.iter_modules(r4b.__path__):
        for item in vars(importlib.import_module(f"{r4b.__name__}.{module.name}")).values():
            for field in getattr(item, "model_fields", {}).values() if isinstance(item, type) else ():
                extra = field.json_schema_extra
                if isinstance(extra, dict) and isinstance(extra.get("one_of_many"), str):
                    names.add(extra["one_of_many"])
    return frozenset(names)


def _children(node: Node, name: str) -> list[Node]:
    value = node.value
    if not isinstance(value, dict):
        return []
    found = value.get(name)
    if found is not None:
        items = found if isinstance(found, list) else [found]
        return [Node(item) for item in items if item is not None]
    if name not in choice_names():
        return []  # most missing elements: no walk over the element's keys
    # Choice type: `value` stands for valueQuantity, valueString, ...
    out = []
    for key, item in value.items():
        if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
            for element in item if isinstance(item, list) else [item]:
                out.append(Node(element, key[len(name) :]))
    return out


# The R4 types that specialise another (StructureDefinition.baseDefinition), lower-cased: `as uri` keeps a
# canonical, `as Quantity` an Age. Every other type's parent is Element or BackboneElement.
_SUPERTYPES = {
    **dict.fromkeys(("canonical", "oid", "url", "uuid"), "uri"),
    **dict.fromkeys(("code", "id", "markdown"), "string"),
    **dict.fromkeys(("positiveint", "unsignedint"), "integer"),
    **dict.fromkeys(("age", "count", "distance", "duration", "moneyquantity", "simplequantity"), "quantity"),
}


def same_type(hint: str | None, type_name: str) -> bool:
    """Whether an element of type `hint` (unknown: None) is a `type_name`, that type or a specialisation."""
    if hint is None:
        return True
    wanted, current = type_name.lower(), hint.lower()
    while current != wanted:
        if current not in _SUPERTYPES:
            return False
        current = _SUPERTYPES[current]
    return True


def reference_type(value: Any, root: Any = None) -> str | None:
    """The type `resolve()` finds for a Reference: a contained resource's (`#id`, or `#` the container
    itself) when `root` is the resource holding it, else the type named by the reference or its `type`."""
    if not isinstance(value, dict):
        return None
    reference = value.get("reference")
    if isinstance(reference, str) and reference.startswith("#"):
        return _contained_type(reference[1:], root)
    if isinstance(reference, str) and "/" in reference:
        parts = reference.split("/")
        # Type/id or Type/id/_history/n, possibly absolute
        if len(parts) >= 4 and parts[-2] == "_history":
            return parts[-4]
        return parts[-2]
    type_name = value.get("type")
    return type_name if isinstance(type_name, str) else None


def _contained_type(local_id: str, root: Any) -> str | None:
    if not isinstance(root, dict):
        return None
    if not local_id:
        found = root.get("resourceType")
        return found if isinstance(found, str) else None
    for contained in root.get("contained") or ():
        if isinstance(contained, dict) and contained.get("id") == local_id:
            found = contained.get("resourceType")
            return found if isinstance(found, str) else None
    return None


def _apply(step: Step, nodes: list[Node], root: Any = None) -> list[Node]:
    if isinstance(step, Child):
        return [child for node in nodes for child in _children(node, step.name)]
    if isinstance(step, AsType):
        return [
            Node(n.value, n.type_hint or step.type_name)
            for n in nodes
            if same_type(n.type_hint, step.type_name)
        ]
    if isinstance(step, ResolvesTo):
        return [n for n in nodes if reference_type(n.value, root) == step.type_name]
    if isinstance(step, FieldEquals):
        return [n for n in nodes if isinstance(n.value, dict) and n.value.get(step.field) == step.literal]
    if isinstance(step, Index):
        return nodes[step.index : step.index + 1]
    if isinstance(step, TruthyFlag):
        values = [child.value for node in nodes for child in _children(node, step.name)]
        return [Node(bool(values) and values != [False], "Boolean")]
    return nodes[:1]  # First


def evaluate(branches: tuple[Branch, ...], resource: dict[str, Any]) -> list[Node]:
    resource_type = resource.get("resourceType")
    out: list[Node] = []
    for root, steps in branches:
        if root not in (resource_type, "Resource", "DomainResource"):
            continue
        nodes = [Node(resource)]
        for step in steps:
            nodes = _apply(step, nodes, resource)
            if not nodes:
                break
        out.extend(nodes)
    return out


def evaluate_relative(branches: tuple[Branch, ...], element: Any) -> list[Node]:
    """For composite components: expressions relative to an element (`code`, `value.as(Quantity)`)."""
    out: list[Node] = []
    for root, steps in branches:
        nodes = _children(Node(element), root)
        for step in steps:
            nodes = _apply(step, nodes)
        out.extend(nodes)
    return out
