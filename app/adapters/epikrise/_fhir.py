"""What the Epikrise's FHIR mapping modules share (`to_fhir`, `results`, `from_fhir`): code systems, the
InfItem extension and its sub-extensions."""

from __future__ import annotations

from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.model import Coded

Json = dict[str, Any]
LOINC = "http://loinc.org"
CODES = "http://helsebro.no/fhir/CodeSystem/kith-epikrise"
EXT_ITEM = f"{f.SD}/kith-epikrise-item"  # InfItem details without a native element


def parts(**values: Any) -> list[Json]:
    """Sub-extensions of the non-empty values: str → string, Coded → CodeableConcept, datetime → dateTime."""
    out: list[Json] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out.append(f.ext(name, "Boolean", value))
        elif isinstance(value, int):
            out.append(f.ext(name, "Integer", value))
        elif isinstance(value, str):
            out.append(f.ext(name, "String", value))
        elif isinstance(value, Coded):
            out.append(f.ext(name, "CodeableConcept", f.cc(value)))
        else:
            out.append(f.ext(name, "DateTime", f.fhir_datetime(value)))
    return out
