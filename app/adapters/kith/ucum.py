"""Whether a KITH unit (`PQ/@U`, as the lab wrote it) is a UCUM expression, so that a FHIR Quantity may
carry it as a code of `http://unitsofmeasure.org`; otherwise the unit stays text only.

The grammar is UCUM's (terms of components joined by `.` and `/`, exponents, `10*n` factors, `{annotations}`,
parentheses); the atoms are those met in clinical laboratory results, not the whole UCUM table, so an exotic
but valid unit is kept as text (never wrongly coded).
"""

from __future__ import annotations

import re

UCUM = "http://unitsofmeasure.org"

# Prefixable metric atoms (UCUM case-sensitive codes) and the prefixes used with them in laboratories.
_METRIC = frozenset(
    {"g", "mol", "L", "l", "m", "s", "U", "kat", "eq", "osm", "Pa", "bar", "Cel", "K", "[IU]"}
)
_METRIC |= frozenset({"[iU]", "mm[Hg]", "m[Hg]", "cal", "J", "W", "V", "Hz"})
_PREFIXES = ("da", "k", "h", "d", "c", "m", "u", "n", "p", "f", "M", "G")
# Atoms that take no prefix (time, percent, arbitrary and dimensionless units).
_PLAIN = frozenset({"min", "h", "d", "wk", "mo", "a", "%", "[pH]", "[ppm]", "[ppb]", "[arb'U]", "[cnt]"})
_PLAIN |= frozenset({"[drp]", "[HPF]", "[LPF]", "1"})
_EXPONENT = re.compile(r"[+-]?\d+$")
_FACTOR = re.compile(r"\d+(\*[+-]?\d+)?$")  # 10*9, 1000
_ANNOTATION = re.compile(r"\{[!-z|~]*\}")  # any printable ASCII but curly braces


def _atom(text: str) -> bool:
    if text in _PLAIN or text in _METRIC:
        return True
    return any(text.startswith(p) and text[len(p) :] in _METRIC for p in _PREFIXES)


def _component(text: str) -> bool:
    if not text:
        return False
    if text.startswith("(") and text.endswith(")"):
        return is_ucum(text[1:-1])
    bare = _ANNOTATION.sub("", text)
    if not bare:
        return text != bare  # an annotation alone ({cells}) stands for 1
    if _FACTOR.match(bare):
        return True
    exponent = _EXPONENT.search(bare)
    atom = bare[: exponent.start()] if exponent and exponent.start() > 0 else bare
    return _atom(atom)


def is_ucum(unit: str | None) -> bool:
    """True for a UCUM expression of known atoms (`mmol/L`, `10*9/L`, `mL/min/{1.73_m2}`, `%`)."""
    if not unit or any(ch.isspace() for ch in unit):
        return False
    if unit.startswith("/"):
        unit = "1" + unit
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(unit):  # split on . and / outside parentheses and annotations
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch in "./" and depth == 0:
            parts.append(unit[start:i])
            start = i + 1
        if depth < 0:
            return False
    parts.append(unit[start:])
    return depth == 0 and all(_component(p) for p in parts)


def fhir_quantity(value: float | None, unit: str | None) -> dict[str, object]:
    """A FHIR Quantity of a KITH PQ: the unit as written, coded in UCUM when it is a UCUM expression."""
    out: dict[str, object] = {}
    if value is not None:
        out["value"] = value
    if unit is not None:
        out["unit"] = unit
        if is_ucum(unit):
            out |= {"system": UCUM, "code": unit}
    return out
