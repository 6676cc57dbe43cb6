"""Model values ↔ the parts of a complex extension, by table: (part name, model field, kind). The mappings
use it for what FHIR has no element for, so that the XML maps back exactly."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.adapters.eresept._fhir_medicine import quantity_decimal
from app.adapters.kith import _fhir_common as f

Json = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """How one model value travels as an extension value: its FHIR type and the conversions."""

    fhir_type: str
    to_fhir: Callable[[Any], Any]
    from_fhir: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


CODED = Kind("CodeableConcept", f.cc, f.coded)
TEXT = Kind("String", _same, _same)
BOOLEAN = Kind("Boolean", _same, _same)
DATE = Kind("Date", date.isoformat, f.from_fhir_date)
DECIMAL = Kind("Decimal", float, quantity_decimal)
INTEGER = Kind("Integer", _same, _same)
QUANTITY = Kind("Quantity", f.quantity, f.from_quantity)
IDENT = Kind("Identifier", f.identifier, lambda v: f.idents([v])[0])
ADDRESS = Kind("Address", f.address, f.from_address)
CONTACT = Kind("ContactPoint", f.contact_point, f.from_contact_point)
DATETIME = Kind("DateTime", f.fhir_datetime, f.from_fhir_datetime)
BASE64 = Kind("Base64Binary", lambda b: base64.b64encode(b).decode("ascii"), base64.b64decode)
URL = Kind("Url", _same, _same)


def parts_of(source: Any, table: tuple[tuple[str, str, Kind], ...]) -> list[Json]:
    """Extension parts of the attributes of `source` that `table` names (None values left out)."""
    return [
        f.ext(name, kind.fhir_type, kind.to_fhir(value))
        for name, attr, kind in table
        if (value := getattr(source, attr)) is not None
    ]


def read_parts(parts: list[Json], table: tuple[tuple[str, str, Kind], ...]) -> dict[str, Any]:
    """The model fields `table` names, read back from extension parts (absent: None)."""
    holder = {"extension": parts}
    out: dict[str, Any] = {}
    for name, attr, kind in table:
        value = f.ext_value(holder, name, kind.fhir_type)
        out[attr] = None if value is None else kind.from_fhir(value)
    return out
