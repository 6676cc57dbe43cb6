"""Reading the inputs of the referral operations from a FHIR `Parameters` body, with clear errors."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from app.fhir.outcome import Category, FhirError
from app.resources.referrals.taskjson import Reference, parse_date, parse_datetime
from app.resources.referrals.transitions import InvalidInput

T = TypeVar("T")


def present(value: T | None) -> T:
    """A required parameter's value (OperationInput has already refused a missing one)."""
    if value is None:
        raise InvalidInput("a required parameter is missing")
    return value


class OperationInput:
    """The named parameters of one operation call (an absent body means no parameters)."""

    def __init__(self, body: Any) -> None:
        if body is None:
            body = {"resourceType": "Parameters"}
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError(Category.INVALID, "The operation takes a FHIR Parameters resource as its body")
        self._by_name: dict[str, dict[str, Any]] = {}
        for part in body.get("parameter") or []:
            if not isinstance(part, dict) or not isinstance(part.get("name"), str):
                raise FhirError(Category.INVALID, "Every Parameters.parameter needs a name")
            if part["name"] in self._by_name:
                raise InvalidInput(f"parameter '{part['name']}' is given more than once")
            self._by_name[part["name"]] = part

    def _value(self, name: str, kinds: tuple[str, ...], required: bool) -> Any:
        part = self._by_name.get(name)
        if part is None:
            if required:
                raise InvalidInput(f"parameter '{name}' is required")
            return None
        for kind in kinds:
            if f"value{kind}" in part:
                return part[f"value{kind}"]
        raise InvalidInput(f"parameter '{name}' must be a {' or '.join(kinds)}")

    def code(self, name: str, required: bool = False) -> str | None:
        value = self._value(name, ("Code", "String"), required)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"parameter '{name}' must be a code")
        return value

    def string(self, name: str, required: bool = False) -> str | None:
        value = self._value(name, ("String", "Markdown"), required)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"parameter '{name}' must be a string")
        return value

    def boolean(self, name: str) -> bool:
        value = self._value(name, ("Boolean",), False)
        return bool(value)

    def date(self, name: str, required: bool = False) -> date | None:
        value = self._value(name, ("Date", "DateTime"), required)
        if value is None:
            return None
        parsed = parse_date(value)
        if parsed is None:
            raise InvalidInput(f"parameter '{name}' is not a valid date")
        return parsed

    def date_time(self, name: str, required: bool = False) -> datetime | None:
        value = self._value(name, ("DateTime", "Instant"), required)
        if value is None:
            return None
        parsed = parse_datetime(value)
        if parsed is None or parsed.tzinfo is None:
            raise InvalidInput(f"parameter '{name}' must be a dateTime with a time zone")
        return parsed

    def reference(self, name: str, required: bool = False) -> Reference | None:
        value = self._value(name, ("Reference",), required)
        if value is None:
            return None
        if not isinstance(value, dict) or not (value.get("reference") or value.get("identifier")):
            raise InvalidInput(f"parameter '{name}' must be a Reference with a reference or an identifier")
        return value
