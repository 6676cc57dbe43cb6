"""Which KITH units are UCUM expressions (coded in a FHIR Quantity) and which stay text."""

from __future__ import annotations

import pytest

from app.adapters.kith.ucum import UCUM, fhir_quantity, is_ucum


@pytest.mark.parametrize(
    "unit",
    [
        "mmol/L",
        "mg/L",
        "g/dL",
        "10*9/L",
        "10*12/L",
        "%",
        "fL",
        "pg",
        "U/L",
        "kPa",
        "mL/min/{1.73_m2}",
        "mm[Hg]",
    ],
)
def test_ucum_units(unit: str) -> None:
    assert is_ucum(unit)


@pytest.mark.parametrize("unit", ["10^9/l", "mmol / L", "", "µmol/L", "stk", "mmol/(L", "{x"])
def test_units_that_are_not_ucum(unit: str) -> None:
    assert not is_ucum(unit)


def test_a_quantity_is_coded_only_in_ucum() -> None:
    assert fhir_quantity(7.4, "mmol/L") == {"value": 7.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
    assert fhir_quantity(8.2, "10^9/l") == {"value": 8.2, "unit": "10^9/l"}
    assert fhir_quantity(None, None) == {}
