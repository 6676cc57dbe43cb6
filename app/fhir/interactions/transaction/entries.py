"""Bundle structure: the request of every entry parsed once into an Entry, before anything touches storage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.http import parse_etag_version
from app.fhir.interactions.create import create_criteria
from app.fhir.outcome import Category, FhirError, Issue
from app.fhir.registry import ResourceType
from app.fhir.search.criteria import Criteria, parse_criteria
from app.fhir.service import FhirService
from app.fhir.validate import check_header, check_id, validate_resource

BUNDLE_TYPES = ("batch", "transaction")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# A conditional reference: Type?criteria (http://hl7.org/fhir/R4/http.html#trules).
CONDITIONAL_REFERENCE = re.compile(r"^[A-Z][A-Za-z]{0,63}\?")


class _Unchecked(Enum):
    UNCHECKED = "unchecked"


# A resource's validation made before its entry is parsed: None (valid), the error, or UNCHECKED (not made).
UNCHECKED = _Unchecked.UNCHECKED
Verdict = FhirError | _Unchecked | None


@dataclass(frozen=True)
class Target:
    """What a request URL points at, e.g. Patient/1/_history/2 or Patient?identifier=x."""

    res_type: str | None
    res_id: str | None = None
    history: bool = False
    version: str | None = None
    query: str = ""


@dataclass(frozen=True)
class Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    target: Target
    rtype: ResourceType | None
    resource: dict[str, Any] | None
    if_match: int | None = None
    if_none_exist: str | None = None
    # ifNoneExist of a POST or the criteria of a conditional PUT/PATCH/DELETE (parsed for transactions only)
    criteria: Criteria | None = None
    has_references: bool = False
    conditional_references: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"Bundle.entry[{self.index}] ({self.method} {self.url[:120]})"

    def fail(self, error: FhirError) -> FhirError:
        return entry_error(self.index, self.label, self.rtype.name if self.rtype else None, error)

    @property
    def conditional(self) -> bool:
        return self.target.res_id is None and self.method in ("PUT", "PATCH", "DELETE")


def raw_label(index: int, raw: Any) -> str:
    """The label of an entry that could not be parsed, from whatever it has."""
    request = raw.get("request") if isinstance(raw, dict) else None
    if isinstance(request, dict):
        return f"Bundle.entry[{index}] ({str(request.get('method'))[:10]} {str(request.get('url'))[:120]})"
    return f"Bundle.entry[{index}]"


def _in_entry(index: int, res_type: str | None, expression: str) -> str:
    """A resource-relative expression (Patient.name[0]) as seen from the Bundle."""
    if expression.startswith("Bundle."):
        return expression
    if res_type and expression.startswith(res_type) and expression[len(res_type) : len(res_type) + 1] in ".[":
        expression = expression[len(res_type) :].lstrip(".")
    return f"Bundle.entry[{index}].resource.{expression}"


def entry_error(index: int, label: str, res_type: str | None, error: FhirError) -> FhirError:
    """The error of one entry as the error of the whole transaction: it names the entry."""
    expressions = tuple(
        dict.fromkeys((f"Bundle.entry[{index}]", *(_in_entry(index, res_type, e) for e in error.expression)))
    )
    extra = [
        Issue(i.diagnostics, i.code, tuple(_in_entry(index, res_type, e) for e in i.expression), i.severity)
        for i in error.extra_issues
    ]
    return FhirError(error.category, f"{label}: {error.message}", error.issue_code, expressions, extra)


def _invalid(message: str, expression: str, code: str = "invalid") -> FhirError:
    return FhirError(Category.INVALID, message, code, (expression,))


def bundle_entries(body: Any) -> tuple[str, list[Any]]:
    """(batch | transaction, raw entries) of a Bundle; anything else is a 400."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise _invalid("POST / takes a Bundle of type batch or transaction", "resourceType")
    bundle_type = body.get("type")
    if bundle_type not in BUNDLE_TYPES:
        raise _invalid(
            f"Bundle.type must be batch or transaction, got '{str(bundle_type)[:40]}'", "Bundle.type"
        )
    raw = body.get("entry", [])
    if not isinstance(raw, list):
        raise _invalid("Bundle.entry must be an array", "Bundle.entry", "structure")
    return bundle_type, raw


def parse_target(ctx: RequestContext, method: str, url: str) -> Target:
    """Split a request URL (relative, or absolute on this server) into type, id, history and query."""
    if url.startswith(("http://", "https://")):
        base = f"{ctx.base_url}/"
        if not url.startswith(base):
            raise FhirError(
                Category.INVALID, f"request.url '{url[:120]}' is not on this server", "not-supported"
            )
        url = url[len(base) :]
    path, _, query = url.lstrip("/").partition("?")
    parts = [p for p in path.split("/") if p] if path else []
    if parts == ["_history"] and method in ("GET", "HEAD"):
        return Target(None, history=True, query=query)
    if not parts or len(parts) > 4 or any(p.startswith("$") for p in parts):
        raise FhirError(Category.INVALID, f"request.url '{url[:120]}' is not supported here", "not-supported")
    res_type, rest = parts[0], parts[1:]
    if method in ("GET", "HEAD"):
        if rest == ["_history"]:
            return Target(res_type, history=True, query=query)
        if len(rest) >= 1:
            check_id(rest[0])
        if len(rest) == 1:
            return Target(res_type, rest[0], query=query)
        if len(rest) == 2 and rest[1] == "_history":
            return Target(res_type, rest[0], history=True, query=query)
        if len(rest) == 3 and rest[1] == "_history":
            return Target(res_type, rest[0], history=True, version=rest[2])
        if not rest:
            return Target(res_type, query=query)  # a search
    elif method == "POST":
        if not rest and not query:
            return Target(res_type)
    elif len(rest) == 1 and not query:
        check_id(rest[0])
        return Target(res_type, rest[0])
    elif not rest:
        return Target(res_type, query=query)  # conditional: the criteria are checked later
    raise FhirError(Category.INVALID, f"{method} {url[:120]} is not a supported request", "not-supported")


def _text(value: Any, at: str, field: str, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        code = "required" if value is None else "value"
        raise _invalid(f"{field} must be a non-empty string", f"{at}.{field}", code)
    return value


def references(value: Any) -> Iterator[str]:
    """Every Reference.reference in a JSON value: contained resources and extensions included."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "reference" and isinstance(child, str):
                yield child
            elif isinstance(child, dict | list):
                yield from references(child)
    elif isinstance(value, list):
        for child in value:
            if isinstance(child, dict | list):
                yield from references(child)


def _check_body_id(res_type: str, res_id: str, resource: dict[str, Any]) -> None:
    body_id = resource.get("id")
    if body_id != res_id:
        raise _invalid(
            f"The resource of PUT {res_type}/{res_id} must carry id '{res_id}', not '{str(body_id)[:64]}'",
            f"{res_type}.id",
        )


def parse_entry(
    svc: FhirService,
    ctx: RequestContext,
    index: int,
    raw: Any,
    transaction: bool,
    verdict: Verdict = UNCHECKED,
) -> Entry:
    """One entry's request. Transactions also validate the resource and parse criteria here, once;
    a batch leaves that to the public interaction functions it calls. `verdict`: the resource's
    validation, when it was made elsewhere (validate_many, app/fhir/cpu_pool.py)."""
    at = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise _invalid("A Bundle entry must be an object", at, "structure")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise _invalid("Every entry needs a request (method and url)", f"{at}.request", "required")
    method = _text(request.get("method"), at, "request.method", True)
    url = _text(request.get("url"), at, "request.url", True)
    assert method is not None
    assert url is not None
    if method not in METHODS:
        message = f"request.method '{method[:20]}' is not one of {', '.join(METHODS)}"
        raise _invalid(message, f"{at}.request.method")
    target = parse_target(ctx, method, url)
    rtype = svc.resource_type(target.res_type) if target.res_type else None
    full_url = _text(raw.get("fullUrl"), at, "fullUrl")
    if_none_exist = _text(request.get("ifNoneExist"), at, "request.ifNoneExist")
    if_match = parse_etag_version(_text(request.get("ifMatch"), at, "request.ifMatch"), "request.ifMatch")
    resource = raw.get("resource")
    if method in ("POST", "PUT", "PATCH"):
        if not isinstance(resource, dict):
            code = "required" if resource is None else "structure"
            raise _invalid(f"A {method} entry needs a resource (a JSON object)", f"{at}.resource", code)
    else:
        resource = None  # GET and DELETE ignore a resource if one is sent
    entry = Entry(index, method, url, full_url, target, rtype, resource, if_match, if_none_exist)
    if not transaction or rtype is None or method in ("GET", "HEAD"):
        return entry
    return _prepare_write(entry, svc, rtype, resource, verdict)


def _prepare_write(
    entry: Entry, svc: FhirService, rtype: ResourceType, resource: dict[str, Any] | None, verdict: Verdict
) -> Entry:
    criteria: Criteria | None = None
    if entry.method in ("POST", "PUT"):
        if verdict is UNCHECKED:
            resource = validate_resource(svc.registry, resource, rtype.name)
        else:
            check_header(svc.registry, resource, rtype.name)  # what the verdict left out
            if verdict is not None:
                raise verdict
            assert resource is not None  # check_header refuses anything but a JSON object
        if entry.method == "POST":
            criteria = create_criteria(rtype, resource, entry.if_none_exist, svc.registry, svc.base_url)
        elif entry.target.res_id is not None:
            _check_body_id(rtype.name, entry.target.res_id, resource)
    if entry.conditional:
        criteria = parse_criteria(rtype, entry.target.query, svc.registry, svc.base_url)
    refs = list(references(resource)) if resource is not None else []
    conditional = tuple(dict.fromkeys(r for r in refs if CONDITIONAL_REFERENCE.match(r)))
    return replace(
        entry,
        resource=resource,
        criteria=criteria,
        has_references=bool(refs),
        conditional_references=conditional,
    )
