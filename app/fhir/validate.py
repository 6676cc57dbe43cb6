"""Parse and validate a FHIR JSON resource once, on write.

fhir.resources' R4B models check structure, cardinality, primitive formats and choice types. What they
let through is checked here: codes outside a required value set of R4 (app/fhir/data/required-bindings.json,
generated from the standard's definitions by app/fhir/bindings_generate.py, hierarchical value sets
expanded), empty objects, arrays or strings, nulls outside primitive arrays (FHIR JSON, section 2.6.2),
control characters in strings, literal references of no valid form, and nesting deeper than MAX_DEPTH.
Errors carry a FHIRPath-style `expression`.
"""

from __future__ import annotations

import json
import re
import typing
from functools import cache
from importlib import resources
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from app.fhir.outcome import Category, FhirError, Issue
from app.fhir.registry import Registry, ResourceType
from app.fhir.validate_extensions import EXTENSION_LISTS, extensions_valid, split_extensions

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_ISSUES = 50
# JSON nesting levels a resource may use (the root object is level 1). Real resources stay far below it
# (nested Questionnaire items ~25); far deeper ones exhaust Python's stack in the models' validators and
# cannot be written by orjson (which stops at 255 levels).
MAX_DEPTH = 100
# FHIR strings (R4 2.24.0.1 `string`) allow no characters below U+0020 except tab, LF and CR; PostgreSQL
# cannot even store U+0000 in text.
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Literal reference forms (R4 2.3.0.1 Reference.reference): "#" or "#id" (contained), Type/id with an
# optional /_history/vid, Type?criteria (a conditional reference, resolved by transactions), urn:uuid and
# urn:oid (placeholders between bundle entries), or another absolute URI without whitespace.
_REFERENCE = re.compile(
    r"#(?:[A-Za-z0-9\-.]{1,64})?"
    r"|[A-Z][A-Za-z]{0,63}/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
    r"|[A-Z][A-Za-z]{0,63}\?[^\s]+"
    r"|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+"
    r"|(?!urn:(?:uuid|oid):)[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+"
)
# A JSON object is taken for a Reference when it has a string "reference" and no key a Reference lacks:
# that leaves out the uri elements named "reference" (DetectedIssue, Expression, ...), which sit beside
# keys of their own.
REFERENCE_KEYS = frozenset({"reference", "type", "identifier", "display", "id", "extension"})


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise FhirError(Category.INVALID, "The request body is empty; a FHIR JSON resource was expected")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirError(Category.INVALID, f"The request body is not valid JSON: {exc}", "structure") from None
    _refuse_duplicate_keys(body)
    return parsed


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> None:
    if len(dict(pairs)) != len(pairs):
        keys = [key for key, _ in pairs]
        raise _DuplicateKey(next(key for index, key in enumerate(keys) if key in keys[:index]))


def _refuse_duplicate_keys(body: bytes) -> None:
    """orjson keeps the last of repeated keys; RFC 8259 leaves that undefined, so a resource could mean one
    thing to us and another to a client. The standard library's parser sees every key: a second pass with
    it costs ~0.04 ms for a 5 kB resource and ~6 ms for a 1 MB bundle (orjson itself: 0.01 and 2 ms)."""
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        raise FhirError(
            Category.INVALID, f"The JSON object key '{exc.key[:64]}' occurs more than once", "structure"
        ) from None
    except RecursionError:
        raise FhirError(
            Category.INVALID, f"The JSON is nested more than {MAX_DEPTH} levels deep", "structure"
        ) from None


def check_id(resource_id: str) -> None:
    if not ID_PATTERN.fullmatch(resource_id):
        raise FhirError(
            Category.INVALID,
            f"'{resource_id[:80]}' is not a valid FHIR id (1-64 characters of A-Z, a-z, 0-9, '-' and '.')",
            "value",
        )


def _expression(resource_type: str, loc: tuple[int | str, ...]) -> str:
    parts = [resource_type]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif _FIELD_NAME.fullmatch(item):
            parts.append(item)
    return ".".join(parts)


class _TooDeep(Exception):
    pass


class _Findings(list[Issue]):
    """The shape walk's issues, and whether it met an extension list (most resources have none, and then
    the models' check needs no second walk to set them apart)."""

    extensions = False


def _shape_issues(value: Any, path: str, issues: _Findings, depth: int = 1) -> None:
    # Paths are built for containers and for what has an issue only: most elements are primitives, and a
    # path string for each had been a fifth of the whole validation.
    if len(issues) >= _MAX_ISSUES:
        return
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise _TooDeep(path)
        if not value:
            issues.append(Issue("Objects must not be empty", "structure", (path,)))
        reference = value.get("reference")
        if (
            isinstance(reference, str)
            and not _REFERENCE.fullmatch(reference)
            and value.keys() <= REFERENCE_KEYS
        ):
            issues.append(Issue(_bad_reference(reference), "value", (f"{path}.reference",)))
        for key, child in value.items():
            if isinstance(child, str):
                if not child.strip() or CONTROL_CHARACTER.search(child):
                    _string_issue(child, f"{path}.{key}", issues)
            elif child is None:
                issues.append(Issue("null is not allowed here", "structure", (f"{path}.{key}",)))
            elif isinstance(child, list):
                _array_issues(value, key, child, f"{path}.{key}", issues, depth + 1)
            elif isinstance(child, dict):
                _shape_issues(child, f"{path}.{key}", issues, depth + 1)
    elif isinstance(value, str):
        _string_issue(value, path, issues)


def _string_issue(value: str, path: str, issues: _Findings) -> None:
    if not value.strip():
        issues.append(Issue("Strings must not be empty or only whitespace", "value", (path,)))
    elif found := CONTROL_CHARACTER.search(value):
        code_point = f"U+{ord(found.group()):04X}"
        message = f"Control character {code_point}: FHIR strings allow only tab, LF and CR below U+0020"
        issues.append(Issue(message, "value", (path,)))


def _model_validate(model: Any, resource: dict[str, Any], has_extensions: bool) -> None:
    """The models' check, with the extensions checked apart when they pass (far cheaper, same verdict:
    app/fhir/validate_extensions.py); when anything fails, the whole resource through the models, whose
    errors are the ones reported."""
    if not has_extensions:
        model.model_validate(resource)
        return
    stripped, extensions = split_extensions(resource)
    if not extensions or not extensions_valid(extensions):
        model.model_validate(resource)
        return
    try:
        model.model_validate(stripped)
    except ValidationError:
        model.model_validate(resource)  # the whole resource decides, and its errors are the ones reported


def _bad_reference(reference: str) -> str:
    # The value is the caller's own input: quoted only in part, with control characters shown escaped.
    shown = reference[:60].encode("unicode_escape").decode("ascii")
    return (
        f"'{shown}' is not a valid literal reference (Type/id, Type/id/_history/vid, #id, urn:uuid:, "
        "urn:oid:, Type?criteria in a transaction, or an absolute URL)"
    )


def _array_issues(
    parent: dict[str, Any], key: str, items: list[Any], path: str, issues: _Findings, depth: int
) -> None:
    if depth > MAX_DEPTH:
        raise _TooDeep(path)
    if key in EXTENSION_LISTS:
        issues.extensions = True
    if not items:
        issues.append(Issue("Arrays must not be empty", "structure", (path,)))
        return
    # Nulls are only allowed to keep a primitive array aligned with its "_name" extension twin.
    twin_key = key[1:] if key.startswith("_") else f"_{key}"
    twin = parent.get(twin_key)
    for index, item in enumerate(items):
        if isinstance(item, str):
            if not item.strip() or CONTROL_CHARACTER.search(item):
                _string_issue(item, f"{path}[{index}]", issues)
        elif item is None:
            aligned = isinstance(twin, list) and index < len(twin) and twin[index] is not None
            if not aligned:
                issues.append(Issue("null is not allowed here", "structure", (f"{path}[{index}]",)))
        elif isinstance(item, dict | list):
            _shape_issues(item, f"{path}[{index}]", issues, depth + 1)


# A field's plan: (JSON name, its required codes or None, its required codings (system -> codes) or None,
# the child model whose subtree holds required codes or None).
_FieldPlan = tuple[str, frozenset[str] | None, dict[str, frozenset[str]] | None, Any]
_IN_PROGRESS: set[Any] = set()


@cache
def _required_bindings() -> tuple[dict[str, frozenset[str]], dict[str, dict[str, frozenset[str]]]]:
    """R4's required bindings: "Holder.element" -> codes, and -> system -> codes for coded elements."""
    table = json.loads(resources.files("app.fhir").joinpath("data/required-bindings.json").read_bytes())
    codes = {key: frozenset(values) for key, values in table["code"].items()}
    codings = {
        key: {system: frozenset(values) for system, values in systems.items()}
        for key, systems in table["coding"].items()
    }
    return codes, codings


def _child_model(annotation: Any) -> Any:
    """The element class behind an annotation such as Optional[List[abc.HumanNameType]], or None."""
    stack = [annotation]
    while stack:
        item = stack.pop()
        name = getattr(item, "__name__", "")
        if name.endswith("Type") and name not in ("NoneType", "ResourceType"):
            try:
                return get_fhir_model_class(name[: -len("Type")])
            except (KeyError, ValueError, ImportError, AttributeError):
                return None
        stack.extend(typing.get_args(item))
    return None


@cache
def _code_plan(model: Any) -> tuple[_FieldPlan, ...]:
    """Only the fields that are, or lead to, codes of a closed required value set: everything else is
    skipped when checking a resource, which keeps the check far cheaper than walking every element."""
    _IN_PROGRESS.add(model)
    codes, codings = _required_bindings()
    plan: list[_FieldPlan] = []
    for name, info in model.model_fields.items():
        json_name = info.alias or name
        key = f"{model.__name__}.{json_name}"
        closed, coded = codes.get(key), codings.get(key)
        child = None if coded is not None else _child_model(info.annotation)
        if child is not None and (child in _IN_PROGRESS or not _code_plan(child)):
            child = None  # cycles (Extension, Reference ...) and subtrees without required codes
        if closed is not None or coded is not None or child is not None:
            plan.append((json_name, closed, coded, child))
    _IN_PROGRESS.discard(model)
    return tuple(plan)


def _code_issues(model: Any, value: Any, path: str, issues: list[Issue]) -> None:
    if len(issues) >= _MAX_ISSUES or not isinstance(value, dict):
        return
    for json_name, allowed, coded, child_model in _code_plan(model):
        child = value.get(json_name)
        if child is None:
            continue
        child_path = f"{path}.{json_name}"
        items = child if isinstance(child, list) else [child]
        for index, item in enumerate(items):
            item_path = f"{child_path}[{index}]" if isinstance(child, list) else child_path
            if allowed is not None and isinstance(item, str) and item not in allowed:
                issues.append(
                    Issue(
                        f"'{item[:40]}' is not one of the codes allowed here: {_listed(allowed)}",
                        "code-invalid",
                        (item_path,),
                    )
                )
            elif coded is not None and isinstance(item, dict):
                _coding_issues(coded, item, item_path, issues)
            elif child_model is not None:
                _code_issues(child_model, item, item_path, issues)


def _listed(codes: frozenset[str]) -> str:
    shown = sorted(codes)
    return ", ".join(shown[:30]) + (f" (and {len(shown) - 30} more)" if len(shown) > 30 else "")


def _coding_issues(
    required: dict[str, frozenset[str]], concept: dict[str, Any], path: str, issues: list[Issue]
) -> None:
    """A CodeableConcept (or Coding) bound to a required value set needs a coding from it, and no coding in
    one of its systems with a code the value set leaves out."""
    codings = concept.get("coding") if "coding" in concept else [concept]
    if not isinstance(codings, list):
        return
    matched = False
    for index, coding in enumerate(codings):
        if not isinstance(coding, dict):
            continue
        allowed = required.get(coding.get("system", ""))
        if allowed is None:
            continue
        code = coding.get("code")
        if code in allowed:
            matched = True
        else:
            where = f"{path}.coding[{index}].code" if "coding" in concept else f"{path}.code"
            shown = str(code)[:40]
            issues.append(
                Issue(
                    f"'{shown}' is not one of the codes allowed here: {_listed(allowed)}",
                    "code-invalid",
                    (where,),
                )
            )
            return
    if not matched:
        systems = ", ".join(sorted(required))
        issues.append(
            Issue(f"A coding from the required value set ({systems}) is missing", "code-invalid", (path,))
        )


def validate_resource(registry: Registry, resource: Any, expected_type: str | None = None) -> dict[str, Any]:
    """Validate a parsed JSON resource; return it unchanged or raise FhirError (400)."""
    rtype = check_header(registry, resource, expected_type)
    _check_content(rtype, resource)
    return typing.cast(dict[str, Any], resource)


def check_header(registry: Registry, resource: Any, expected_type: str | None) -> ResourceType:
    """validate_resource's first checks, which a verdict made without `expected_type` (app/fhir/cpu_pool.py)
    leaves to its caller: a JSON object of a known type, the endpoint's, with a valid id."""
    if not isinstance(resource, dict):
        raise FhirError(Category.INVALID, "A FHIR resource must be a JSON object", "structure")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirError(Category.INVALID, "The resource has no resourceType", "required", ("resourceType",))
    if expected_type is not None and resource_type != expected_type:
        raise FhirError(
            Category.INVALID,
            f"resourceType '{resource_type[:64]}' does not match the endpoint type '{expected_type}'",
            "invalid",
            ("resourceType",),
        )
    rtype = registry.get(resource_type)
    if rtype is None:
        raise FhirError(
            Category.NOT_FOUND,
            f"Unknown or unsupported resource type '{resource_type[:64]}'",
            "not-supported",
            ("resourceType",),
        )
    if "id" in resource:
        if not isinstance(resource["id"], str):
            raise FhirError(Category.INVALID, "id must be a string", "value", (f"{resource_type}.id",))
        check_id(resource["id"])
    return rtype


def _check_content(rtype: ResourceType, resource: dict[str, Any]) -> None:
    resource_type = rtype.name
    issues = _Findings()
    try:
        _shape_issues(resource, resource_type, issues)
    except _TooDeep as deep:
        # Checked before the models see it: their validators recurse once per level and more.
        raise FhirError(
            Category.INVALID,
            f"The resource is nested more than {MAX_DEPTH} levels deep",
            "structure",
            (str(deep),),
        ) from None
    try:
        _model_validate(rtype.model, resource, issues.extensions)
        _code_issues(rtype.model, resource, resource_type, issues)
    except ValidationError as exc:
        for error in exc.errors(include_url=False)[:_MAX_ISSUES]:
            issues.append(Issue(str(error["msg"]), "invalid", (_expression(resource_type, error["loc"]),)))
    except (KeyError, TypeError, ValueError) as exc:
        # The models raise plain errors for some inputs, e.g. a contained resource of unknown type.
        issues.append(
            Issue(f"Invalid content: {type(exc).__name__} {exc}"[:300], "invalid", (resource_type,))
        )
    if issues:
        first, *rest = issues
        raise FhirError(Category.INVALID, first.diagnostics, first.code, first.expression, rest)
