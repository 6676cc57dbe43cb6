"""FHIRPath Patch (R4 fhirpatch.html): add, insert, delete, replace and move, applied to a copy of a resource.

Processing rules from the spec: every path except a delete's must match; add, replace and delete work on
exactly one element; insert and move work on a list named by the path's last element.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from app.fhir.outcome import Category, FhirError
from app.fhir.patch.elements import Element, element
from app.fhir.patch.fhirpath import Name, Node, evaluate, unsupported
from app.fhir.patch.parameters import FhirPathOp, PatchValue, parse_fhirpath_patch


def _fail(message: str) -> FhirError:
    return FhirError(Category.UNPROCESSABLE, message, "processing")


def _single(root: Node, op: FhirPathOp) -> Node:
    nodes = evaluate(op.path.steps, root)
    if not nodes:
        raise _fail("the path matches nothing")
    if len(nodes) > 1:
        raise _fail(f"the path matches {len(nodes)} elements; it must match exactly one")
    return nodes[0]


def _typed_key(definition: Element, value: PatchValue) -> str:
    """A choice element's JSON key for the value's type: deceased + Boolean -> deceasedBoolean."""
    base = definition.base or definition.name
    key = f"{base}{value.type_suffix}" if value.type_suffix else ""
    if key not in definition.choices:
        allowed = ", ".join(k[len(base) :] for k in definition.choices)
        given = value.type_suffix or "value without a type"
        raise _fail(f"{base}[x] cannot be of type {given}; allowed types: {allowed}")
    return key


def _json(value: PatchValue, model: Any | None) -> Any:
    """The JSON of a value part; nested parts build an object typed by `model` (e.g. Patient.contact)."""
    if value.parts is None:
        return copy.deepcopy(value.json)
    out: dict[str, Any] = {}
    for name, child in value.parts:
        _set_child(out, model, name, child)
    return out


def _set_child(target: dict[str, Any], model: Any | None, name: str, value: PatchValue) -> None:
    """add semantics: append to a repeating element, set an absent single one, refuse to overwrite."""
    definition = element(model, name)
    if definition is None and model is not None:
        raise _fail(f"'{name}' is not an element of {model.__name__}")
    key = name
    if definition is not None and definition.base == name:  # deceased + valueBoolean -> deceasedBoolean
        key = _typed_key(definition, value)
        definition = element(model, key)
    child = _json(value, definition.model if definition else None)
    if (definition is not None and definition.is_list) or isinstance(target.get(key), list):
        target.setdefault(key, []).append(child)
        return
    siblings = tuple(definition.choices) if definition is not None and definition.choices else (key,)
    present = [k for k in siblings if k in target]
    if present:
        raise _fail(f"'{present[0]}' already has a value; use replace")
    target[key] = child


def _add(root: Node, op: FhirPathOp) -> None:
    assert op.name is not None
    assert op.value is not None
    node = _single(root, op)
    if not isinstance(node.value, dict):
        raise _fail("the path must point at an element with children, not a primitive value")
    _set_child(node.value, node.model, op.name, op.value)


def _list_of(root: Node, op: FhirPathOp) -> tuple[dict[str, Any], str, list[Any], Element | None]:
    """For insert and move: the object holding the list named by the path's last step, and the list."""
    steps = op.path.steps
    if not steps or not isinstance(steps[-1], Name):
        raise unsupported(
            op.path.text, f"{op.type} needs a path that ends with the name of a repeating element"
        )
    name = steps[-1].name
    nodes = evaluate(steps[:-1], root)
    if len(nodes) != 1 or not isinstance(nodes[0].value, dict):
        raise _fail(f"the element holding '{name}' must be exactly one object; found {len(nodes)}")
    holder, model = nodes[0].value, nodes[0].model
    definition = element(model, name)
    if model is not None and (definition is None or not definition.is_list):
        raise _fail(f"'{name}' is not a repeating element of {model.__name__}")
    items = holder.get(name, [])
    if not isinstance(items, list):
        raise _fail(f"'{name}' is not a list")
    return holder, name, items, definition


def _insert(root: Node, op: FhirPathOp) -> None:
    assert op.value is not None
    assert op.index is not None
    holder, name, items, definition = _list_of(root, op)
    if op.index > len(items):
        raise _fail(f"index {op.index} is beyond the end of the list ({len(items)} items)")
    items.insert(op.index, _json(op.value, definition.model if definition else None))
    holder[name] = items
    twin = holder.get(f"_{name}")
    if isinstance(twin, list):  # keep primitive extensions aligned with their values
        twin.insert(op.index, None)


def _move(root: Node, op: FhirPathOp) -> None:
    assert op.source is not None
    assert op.destination is not None
    holder, name, items, _definition = _list_of(root, op)
    for what, index in (("source", op.source), ("destination", op.destination)):
        if index >= len(items):
            raise _fail(f"{what} index {index} is out of range ({len(items)} items)")
    for array in (items, holder.get(f"_{name}")):
        if isinstance(array, list) and len(array) == len(items):
            array.insert(op.destination, array.pop(op.source))


def _delete(root: Node, op: FhirPathOp) -> None:
    nodes = evaluate(op.path.steps, root)
    if not nodes:
        return  # delete is the one operation where no match is not an error
    if len(nodes) > 1:
        raise _fail(f"the path matches {len(nodes)} elements; delete removes exactly one")
    node = nodes[0]
    if isinstance(node.container, list) and isinstance(node.key, int):
        del node.container[node.key]
        if node.holder is not None and node.name is not None:
            twin = node.holder.get(f"_{node.name}")
            if isinstance(twin, list) and len(twin) > node.key:
                del twin[node.key]
            # FHIR JSON has no empty arrays: the last item takes its element with it.
            for key in (node.name, f"_{node.name}"):
                if node.holder.get(key) == [] or (key[0] == "_" and _all_none(node.holder.get(key))):
                    node.holder.pop(key, None)
    elif isinstance(node.container, dict) and isinstance(node.key, str):
        node.container.pop(node.key)
        node.container.pop(f"_{node.key}", None)
    else:
        raise _fail("the whole resource cannot be deleted by a patch; use DELETE")


def _all_none(value: Any) -> bool:
    return isinstance(value, list) and all(v is None for v in value)


def _replace(root: Node, op: FhirPathOp) -> None:
    assert op.value is not None
    node = _single(root, op)
    if node.container is None or node.key is None:
        raise _fail("the whole resource cannot be replaced by a patch; use PUT")
    definition = node.definition
    if isinstance(node.container, dict) and isinstance(node.key, str) and definition and definition.choices:
        key = _typed_key(definition, op.value)  # a choice element may change type: drop the old key
        model = definition.choices[key]
        node.container.pop(node.key)
        node.container.pop(f"_{node.key}", None)
        node.container[key] = _json(op.value, model)
        return
    value = _json(op.value, node.model)
    # Two branches with one body: each narrows container and key for the type checker.
    if isinstance(node.container, list) and isinstance(node.key, int):  # noqa: SIM114
        node.container[node.key] = value
    elif isinstance(node.container, dict) and isinstance(node.key, str):
        node.container[node.key] = value


_APPLY = {"add": _add, "insert": _insert, "delete": _delete, "replace": _replace, "move": _move}


def apply_fhirpath_patch(
    resource: dict[str, Any], ops: list[FhirPathOp], model: Any | None
) -> dict[str, Any]:
    """Apply all operations or none; `model` is the resource's fhir.resources class (cardinality, choices)."""
    doc = copy.deepcopy(resource)
    root = Node(None, None, doc, model)
    for position, op in enumerate(ops):
        try:
            _APPLY[op.type](root, op)
        except FhirError as error:
            message = f"FHIRPath Patch {op.describe(position)} failed: {error.message}"
            raise dataclasses.replace(error, message=message, expression=(op.path.text[:200],)) from None
    return doc


__all__ = ["FhirPathOp", "apply_fhirpath_patch", "parse_fhirpath_patch"]
