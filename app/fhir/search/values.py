"""Parsing of single search values: escapes, prefixes, token/quantity/reference forms."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from app.fhir.outcome import Category, FhirError
from app.fhir.search.normalize import date_range, decimal_range
from app.store.query import Prefix, RangeCondition

PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def escape_value(value: str) -> str:
    """A literal search value: FHIR's escapes for its separators (the inverse of split_escaped)."""
    for char in ("\\", "|", ",", "$"):
        value = value.replace(char, "\\" + char)
    return value


def split_escaped(value: str, separator: str) -> list[str]:
    r"""Split on `separator` except where escaped (`\,` `\|` `\$` `\\`), and unescape."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def split_or(value: str) -> list[str]:
    """The comma-separated alternatives of one parameter value (each still carrying `|` escapes)."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            current.extend(("\\", char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def take_prefix(value: str) -> tuple[Prefix, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]  # type: ignore[return-value]
    return "eq", value


def invalid(name: str, value: str, why: str) -> FhirError:
    return FhirError(
        Category.INVALID, f"Invalid value '{value[:60]}' for search parameter '{name}': {why}", "value"
    )


def date_condition(name: str, raw: str, now_micros: int) -> RangeCondition:
    prefix, text = take_prefix(raw)
    bounds = date_range(text)
    if bounds is None:
        raise invalid(name, raw, "expected a FHIR date, dateTime or instant")
    low, high = bounds
    if prefix == "ap":  # within 10% of the distance to now, at least the value's own precision
        margin = abs(now_micros - low) // 10
        low, high = low - margin, high + margin
    return RangeCondition(prefix, low, high)


def number_condition(name: str, raw: str) -> RangeCondition:
    prefix, text = take_prefix(raw)
    parsed = decimal_range(text)
    if parsed is None:
        raise invalid(name, raw, "expected a number")
    value, low, high = parsed
    if prefix in ("eq", "ne"):
        # Equal within the precision of the search value: [low, high) with the upper bound excluded
        # (R4 3.1.1.4.2, "100" is [99.5, 100.5)). range_condition compares inclusively, so pass the
        # largest float below `high`.
        return RangeCondition(prefix, low, math.nextafter(high, -math.inf))
    if prefix == "ap":
        margin = abs(value) * 0.1
        return RangeCondition(prefix, value - margin, value + margin)
    return RangeCondition(prefix, value, value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_DATETIME_MICROS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_DATETIME_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def datetime_condition(condition: RangeCondition) -> RangeCondition:
    """Microsecond bounds -> UTC datetimes (for _lastUpdated, compared with a timestamp column)."""

    def to_dt(micros: float | datetime) -> datetime:
        if isinstance(micros, datetime):
            return micros
        # A time zone or an `ap` margin can push a bound past year 1 or 9999, which no datetime holds
        # (fromtimestamp raised, a 500): clamp to the representable range, which every row lies inside.
        clamped = min(max(int(micros), _MIN_DATETIME_MICROS), _MAX_DATETIME_MICROS)
        return _EPOCH + timedelta(microseconds=clamped)

    return RangeCondition(condition.prefix, to_dt(condition.low), to_dt(condition.high))
