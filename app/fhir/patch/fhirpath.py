"""The FHIRPath subset that FHIRPath Patch clients use, parsed into steps and evaluated to locations.

Supported: `Type.elem.elem`, indexers `[n]`, `.first()`, and `.where(a='x' and b.c=true)` with string,
integer and boolean literals. Evaluation yields locations (container + key) so that an operation can
replace or delete what it found. Anything else is rejected with 422 naming the expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.fhir.outcome import Category, FhirError
from app.fhir.patch.elements import Element, element, model_of_value

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<int>-?\d+)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[.\[\]()=])"
    r"|(?P<other>\S))"
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Where:
    conditions: tuple[tuple[tuple[str, ...], str | int | bool], ...]  # (relative path, literal), and-ed


Step = Name | Index | Where


@dataclass(frozen=True)
class Path:
    text: str
    steps: tuple[Step, ...]


@dataclass
class Node:
    """A location in the resource: container[key] holds value (the root has no container)."""

    container: dict[str, Any] | list[Any] | None
    key: str | int | None
    value: Any
    model: Any | None  # fhir.resources model of the value's type; None for primitives or unknown
    definition: Element | None = None  # the element holding the value (choice and cardinality facts)
    holder: dict[str, Any] | None = None  # for a list item: the object whose key `name` is the list
    name: str | None = None


def unsupported(text: str, why: str) -> FhirError:
    return FhirError(
        Category.UNPROCESSABLE,
        f"Unsupported FHIRPath expression '{text[:200]}': {why}. Supported: element paths from the resource "
        "type, [n], first() and where(element='literal')",
        "not-supported",
        (text[:200],),
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    found = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue
        if kind == "other":
            raise unsupported(text, f"unexpected '{match.group(kind)}'")
        found.append((kind, match.group(kind)))
    return found


def _string(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), literal[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        got_kind, got = self.peek()
        if got_kind != kind or (value is not None and got != value):
            expected = value or kind
            raise unsupported(
                self.text, f"expected {expected} but found '{got}'" if got else f"expected {expected}"
            )
        self.pos += 1
        return got

    def steps(self) -> list[Step]:
        steps: list[Step] = [Name(self.take("ident"))]
        while self.peek()[0] != "end":
            if self.peek()[1] == "[":
                self.take("punct", "[")
                index = int(self.take("int"))
                if index < 0:
                    raise unsupported(self.text, "a negative index")
                steps.append(Index(index))
                self.take("punct", "]")
                continue
            self.take("punct", ".")
            name = self.take("ident")
            if self.peek()[1] != "(":
                steps.append(Name(name))
            elif name == "first":
                self.take("punct", "(")
                self.take("punct", ")")
                steps.append(Index(0))
            elif name == "where":
                steps.append(self.where())
            else:
                raise unsupported(self.text, f"the function {name}() is not supported")
        return steps

    def where(self) -> Where:
        self.take("punct", "(")
        conditions = [self.condition()]
        while self.peek() == ("ident", "and"):
            self.take("ident", "and")
            conditions.append(self.condition())
        self.take("punct", ")")
        return Where(tuple(conditions))

    def condition(self) -> tuple[tuple[str, ...], str | int | bool]:
        names = [self.take("ident")]
        while self.peek()[1] == ".":
            self.take("punct", ".")
            names.append(self.take("ident"))
        self.take("punct", "=")
        kind, value = self.peek()
        self.pos += 1
        if kind == "str":
            return tuple(names), _string(value)
        if kind == "int":
            return tuple(names), int(value)
        if (kind, value) in (("ident", "true"), ("ident", "false")):
            return tuple(names), value == "true"
        raise unsupported(self.text, f"where() compares with a literal ('text', 123, true), not '{value}'")


def parse_path(text: str, resource_type: str) -> Path:
    """Parse `Type.a.b[0].where(x='y')`; the leading type is optional but must match when given."""
    if not isinstance(text, str) or not text.strip():
        raise FhirError(Category.INVALID, "A FHIRPath Patch path must be a non-empty string", "required")
    steps = _Parser(text).steps()
    first = steps[0]
    assert isinstance(first, Name)
    if first.name == resource_type:
        steps = steps[1:]
    elif first.name[:1].isupper():
        raise unsupported(text, f"the path must start with {resource_type}")
    return Path(text, tuple(steps))


def _children(node: Node, name: str) -> list[Node]:
    value = node.value
    if not isinstance(value, dict):
        return []
    info = element(node.model, name)
    if info is not None and info.base == name:  # choice element named by its base: find the typed key
        for key, model in info.choices.items():
            if key in value:
                return [Node(value, key, value[key], model, element(node.model, key))]
        return []
    if name not in value:
        return []
    model = info.model if info is not None else None
    child = value[name]
    if isinstance(child, list):
        return [
            Node(child, i, item, model_of_value(model, item), info, value, name)
            for i, item in enumerate(child)
        ]
    return [Node(value, name, child, model_of_value(model, child), info)]


def _matches(node: Node, conditions: Where) -> bool:
    for names, literal in conditions.conditions:
        found = [node]
        for name in names:
            found = [child for item in found for child in _children(item, name)]
        # FHIRPath '=' on a collection of more than one item is not true: compare exactly one value.
        if len(found) != 1 or not _literal_equal(found[0].value, literal):
            return False
    return True


def _literal_equal(value: Any, literal: str | int | bool) -> bool:
    if isinstance(literal, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(literal, bool) and value == literal
    return type(value) is type(literal) and value == literal


def evaluate(steps: tuple[Step, ...], root: Node) -> list[Node]:
    nodes = [root]
    for step in steps:
        if isinstance(step, Name):
            nodes = [child for node in nodes for child in _children(node, step.name)]
        elif isinstance(step, Index):
            nodes = [nodes[step.index]] if 0 <= step.index < len(nodes) else []
        else:
            nodes = [node for node in nodes if _matches(node, step)]
    return nodes
