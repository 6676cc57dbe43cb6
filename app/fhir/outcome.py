"""One exception type for every FHIR error, and one table from its category to HTTP status and issue code."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson


class Category(Enum):
    INVALID = "invalid"
    NOT_FOUND = "not-found"
    GONE = "gone"
    CONFLICT = "conflict"
    PRECONDITION = "precondition"
    UNPROCESSABLE = "unprocessable"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    TOO_LARGE = "too-large"
    UNSUPPORTED_MEDIA = "unsupported-media"
    NOT_ACCEPTABLE = "not-acceptable"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    BUSY = "busy"
    FAULT = "fault"


# category -> (HTTP status, OperationOutcome.issue.code)
_TABLE: dict[Category, tuple[int, str]] = {
    Category.INVALID: (400, "invalid"),
    Category.NOT_FOUND: (404, "not-found"),
    Category.GONE: (410, "deleted"),
    Category.CONFLICT: (409, "conflict"),
    Category.PRECONDITION: (412, "conflict"),
    Category.UNPROCESSABLE: (422, "processing"),
    Category.FORBIDDEN: (403, "forbidden"),
    Category.UNAUTHORIZED: (401, "login"),
    Category.TOO_LARGE: (413, "too-costly"),
    Category.UNSUPPORTED_MEDIA: (415, "not-supported"),
    Category.NOT_ACCEPTABLE: (406, "not-supported"),
    Category.METHOD_NOT_ALLOWED: (405, "not-supported"),
    Category.BUSY: (503, "transient"),
    Category.FAULT: (500, "exception"),
}
# The issue code of each status (the first category that answers it), for documentation.
ISSUE_CODES = {status: code for status, code in reversed(_TABLE.values())}


@dataclass(frozen=True)
class Issue:
    diagnostics: str
    code: str | None = None
    expression: tuple[str, ...] = ()
    severity: str = "error"

    def to_json(self, default_code: str) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code or default_code}
        issue["diagnostics"] = fhir_string(self.diagnostics)
        if self.expression:
            issue["expression"] = [fhir_string(e) for e in self.expression]
        return issue


def fhir_string(text: str) -> str:
    """`text` as a valid FHIR string: messages quote what the client sent (an element name, a parameter),
    and control characters or whitespace other than space, tab, CR and LF would make the OperationOutcome
    itself invalid (and could spoof lines in a client's log), so they are shown escaped, as \\uXXXX."""
    if text.isprintable():
        return text or "-"
    return "".join(c if c.isprintable() or c in "\t\n\r" else f"\\u{ord(c):04x}" for c in text)


@dataclass
class FhirError(Exception):
    category: Category
    message: str
    issue_code: str | None = None
    expression: tuple[str, ...] = ()
    extra_issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.category.value}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled with its fields (Exception's own pickling keeps only args, empty here): an error raised
        # in a worker process comes back whole (app/fhir/cpu_pool.py).
        fields = (self.category, self.message, self.issue_code, self.expression, self.extra_issues)
        return (type(self), (*fields, self.headers))

    @property
    def status(self) -> int:
        return _TABLE[self.category][0]

    def outcome(self) -> dict[str, Any]:
        default_code = _TABLE[self.category][1]
        first = Issue(self.message, self.issue_code, self.expression)
        return operation_outcome([first, *self.extra_issues], default_code)


def operation_outcome(issues: list[Issue], default_code: str = "informational") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json(default_code) for i in issues]}


def informational(message: str) -> dict[str, Any]:
    return operation_outcome([Issue(message, "informational", severity="information")])


def outcome_bytes(outcome: dict[str, Any]) -> bytes:
    return orjson.dumps(outcome)


def status_for(category: Category) -> int:
    return _TABLE[category][0]
