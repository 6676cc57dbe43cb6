"""Build FHIRPath Patch Parameters documents for tests."""

from __future__ import annotations

from typing import Any


def operation(op_type: str, path: str, **parts: Any) -> dict[str, Any]:
    """parts: name='x' -> valueString; index=1 -> valueInteger; value=('valueX', json) or a list of parts."""
    out: list[dict[str, Any]] = [
        {"name": "type", "valueCode": op_type},
        {"name": "path", "valueString": path},
    ]
    for name, value in parts.items():
        if isinstance(value, tuple):
            out.append({"name": name, value[0]: value[1]})
        elif isinstance(value, list):
            out.append({"name": name, "part": value})
        elif isinstance(value, int):
            out.append({"name": name, "valueInteger": value})
        else:
            out.append({"name": name, "valueString": value})
    return {"name": "operation", "part": out}


def params(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(ops)}
