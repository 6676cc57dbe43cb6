"""RFC 6902 JSON Patch with RFC 6901 JSON Pointers, applied atomically to a copy of a JSON document."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from app.fhir.outcome import Category, FhirError

_OPS = ("add", "remove", "replace", "move", "copy", "test")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_MISSING = object()


@dataclass(frozen=True)
class JsonPatchOp:
    op: str
    path: tuple[str, ...]  # unescaped reference tokens
    value: Any = None
    source: tuple[str, ...] = ()  # the "from" member of move and copy

    def describe(self, position: int) -> str:
        return f"operation {position} ({self.op} {format_pointer(self.path)})"


def _malformed(message: str) -> FhirError:
    return FhirError(Category.INVALID, f"Malformed JSON Patch: {message}", "invalid")


def parse_pointer(pointer: Any, where: str = "path") -> tuple[str, ...]:
    """'/a~1b/0' -> ('a/b', '0'). The empty string is the whole document."""
    if not isinstance(pointer, str):
        raise _malformed(f"'{where}' must be a string JSON Pointer")
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise _malformed(f"JSON Pointer '{pointer[:80]}' must be empty or start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        if re.search(r"~(?![01])", raw):
            raise _malformed(f"JSON Pointer '{pointer[:80]}' has a '~' that is not ~0 or ~1")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def format_pointer(tokens: tuple[str, ...]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def parse_json_patch(document: Any) -> list[JsonPatchOp]:
    """Check the structure of a JSON Patch document (400 when malformed) before touching any resource."""
    if not isinstance(document, list):
        raise _malformed("the body must be a JSON array of operations")
    ops = []
    for position, item in enumerate(document):
        if not isinstance(item, dict):
            raise _malformed(f"operation {position} is not a JSON object")
        op = item.get("op")
        if op not in _OPS:
            raise _malformed(f"operation {position} has op {op!r}; expected one of {', '.join(_OPS)}")
        path = parse_pointer(item.get("path", _MISSING), "path")
        if op in ("add", "replace", "test") and "value" not in item:
            raise _malformed(f"operation {position} ({op}) has no 'value'")
        source = parse_pointer(item.get("from", _MISSING), "from") if op in ("move", "copy") else ()
        ops.append(JsonPatchOp(op, path, item.get("value"), source))
    return ops


def _unprocessable(message: str) -> FhirError:
    return FhirError(Category.UNPROCESSABLE, message, "processing")


def _array_index(array: list[Any], token: str, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(array)
    if not _ARRAY_INDEX.fullmatch(token):
        raise _unprocessable(f"'{token[:40]}' is not an array index")
    index = int(token)
    if index > len(array) or (index == len(array) and not allow_end):
        raise _unprocessable(f"array index {index} is out of range (the array has {len(array)} items)")
    return index


def _resolve(doc: Any, tokens: tuple[str, ...]) -> Any:
    node = doc
    for depth, token in enumerate(tokens):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(node, token, allow_end=False)]
        else:
            raise _unprocessable(f"'{format_pointer(tokens[: depth + 1])}' does not exist")
    return node


def _parent(doc: Any, tokens: tuple[str, ...]) -> Any:
    parent = _resolve(doc, tokens[:-1])
    if not isinstance(parent, dict | list):
        raise _unprocessable(f"'{format_pointer(tokens[:-1])}' is not an object or array")
    return parent


def _add(doc: Any, tokens: tuple[str, ...], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        parent.insert(_array_index(parent, tokens[-1], allow_end=True), value)
    else:
        parent[tokens[-1]] = value
    return doc


def _remove(doc: Any, tokens: tuple[str, ...]) -> Any:
    """Remove and return the value at tokens."""
    if not tokens:
        raise _unprocessable("the whole document cannot be removed")
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        return parent.pop(_array_index(parent, tokens[-1], allow_end=False))
    if tokens[-1] not in parent:
        raise _unprocessable(f"'{format_pointer(tokens)}' does not exist")
    return parent.pop(tokens[-1])


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's ==, true is not 1 (RFC 6902 4.6)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _apply_op(doc: Any, op: JsonPatchOp) -> Any:
    if op.op == "add":
        return _add(doc, op.path, copy.deepcopy(op.value))
    if op.op == "remove":
        _remove(doc, op.path)
        return doc
    if op.op == "replace":
        _resolve(doc, op.path)  # the target must exist
        return _add(doc, op.path, copy.deepcopy(op.value)) if not op.path else _replace(doc, op)
    if op.op == "move":
        if op.path[: len(op.source)] == op.source and op.path != op.source:
            raise _unprocessable("a value cannot be moved into one of its own children")
        return _add(doc, op.path, _remove(doc, op.source))
    if op.op == "copy":
        return _add(doc, op.path, copy.deepcopy(_resolve(doc, op.source)))
    if not json_equal(_resolve(doc, op.path), op.value):
        raise _unprocessable("test failed: the value differs")
    return doc


def _replace(doc: Any, op: JsonPatchOp) -> Any:
    parent = _parent(doc, op.path)
    key: str | int = op.path[-1]
    if isinstance(parent, list):
        key = _array_index(parent, op.path[-1], allow_end=False)
    parent[key] = copy.deepcopy(op.value)
    return doc


def apply_json_patch(document: Any, ops: list[JsonPatchOp]) -> Any:
    """Apply all operations or none: the input is never modified; any failure is 422."""
    doc = copy.deepcopy(document)
    for position, op in enumerate(ops):
        try:
            doc = _apply_op(doc, op)
        except FhirError as error:
            raise _unprocessable(f"JSON Patch {op.describe(position)} failed: {error.message}") from None
    return doc
