"""Magistrell prescriptions (fs:Legemiddelblanding) in an M1: every ingredient kind and measure, XML both
ways (valid against the XSD), FHIR both ways (a Medication with its ingredients), and through the intake."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from app.adapters.eresept.from_fhir import prescription_from_bundle
from app.adapters.eresept.messages import build_m1, parse_m1
from app.adapters.eresept.model import (
    Compound,
    Ingredient,
    IngredientKind,
    Medicine,
    Prescription,
    ProductKind,
    Strength,
)
from app.adapters.eresept.to_fhir import PRESCRIPTION_ID_SYSTEM, prescription_to_bundle
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Coded, Quantity
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.resources.medication_list.codes import FEST_SUBSTANCE_SYSTEM
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.eresept.test_fhir import _clinical, _valid_fhir
from tests.adapters.eresept.test_intake_http import accepted
from tests.adapters.kith.test_routes_http import search

SOURCE = parse_m1(fixture_bytes("m1_merkevare.xml"))
CREAM = Coded(code="41", system="2.16.578.1.12.4.1.1.7448", display="Krem")
AD = Coded(code="1", display="ad")
MIXTURE = Compound(
    name="Hydrokortison 1 % og salisylsyre 2 % i Locobase krem",
    preparation="Virkestoffene finfordeles og blandes i basen",
    amount=Quantity(100.0, "g"),
    form=CREAM,
    ingredients=(
        Ingredient(
            IngredientKind.MEDICINE, medicine=SOURCE.medicine.prescribing.medicine, amount=Quantity(10.0, "g")
        ),
        Ingredient(IngredientKind.OTHER, name="Locobase krem", ad_qs=AD),
        Ingredient(IngredientKind.OTHER, name="Renset vann", strength=Strength(Quantity(5.0, "ml"))),
        Ingredient(
            IngredientKind.SUBSTANCE,
            name="Hydrokortison",
            substance_id="ID_0C2D4E6F-1A3B-4C5D-8E9F-112233445566",
            strength=Strength(Quantity(10.0, "mg"), Quantity(1.0, "g")),
        ),
        Ingredient(
            IngredientKind.SUBSTANCE,
            name="Salisylsyre",
            substance_id="ID_7A8B9C0D-2E3F-4A5B-9C6D-778899AABBCC",
            amount=Quantity(2.0, "g"),
        ),
    ),
)
MAGISTRELL = Medicine(ProductKind.COMPOUND, MIXTURE.name, Coded(), form=CREAM, compound=MIXTURE)


def magistrell(msg_id: str = "5b0e8c4a-9d2f-4e61-8a37-c1d2e3f4a5b6") -> Prescription:
    prescribing = dataclasses.replace(SOURCE.medicine.prescribing, medicine=MAGISTRELL)
    medicine = dataclasses.replace(SOURCE.medicine, prescribing=prescribing)
    return dataclasses.replace(
        SOURCE, envelope=dataclasses.replace(SOURCE.envelope, msg_id=msg_id), medicine=medicine
    )


def test_a_magistrell_prescription_round_trips_and_validates(validator: XsdValidator) -> None:
    rx = magistrell()
    xml = build_m1(rx)
    result = validator.validate(xml)
    assert result.valid, result.errors
    assert parse_m1(to_bytes(xml)) == rx


def test_a_magistrell_prescription_through_fhir(validator: XsdValidator) -> None:
    rx = magistrell()
    bundle = prescription_to_bundle(rx)
    _valid_fhir(bundle)
    [medication] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Medication"]
    assert medication["code"]["text"] == MIXTURE.name
    assert medication["amount"]["numerator"] == {"value": 100.0, "unit": "g"}
    kinds = [i["extension"][0]["valueCode"] for i in medication["ingredient"]]
    assert kinds == [i.kind for i in MIXTURE.ingredients]
    assert medication["ingredient"][0]["itemReference"] == {"reference": "#bestanddel1"}
    assert medication["contained"][0]["code"]["coding"][0]["code"] == "C07AB02"  # the product's ATC
    hydrocortisone = medication["ingredient"][3]
    assert hydrocortisone["itemCodeableConcept"]["coding"][0]["system"] == FEST_SUBSTANCE_SYSTEM
    assert hydrocortisone["strength"]["denominator"] == {"value": 1.0, "unit": "g"}
    back = prescription_from_bundle(bundle)
    assert _clinical(back) == _clinical(rx)
    result = validator.validate(build_m1(back))
    assert result.valid, result.errors


def test_an_ingredient_without_a_measure_is_refused() -> None:
    bare = Ingredient(IngredientKind.OTHER, name="Vaselin")
    rx = magistrell()
    mixture = dataclasses.replace(MIXTURE, ingredients=(bare,))
    medicine = dataclasses.replace(MAGISTRELL, compound=mixture)
    prescribing = dataclasses.replace(rx.medicine.prescribing, medicine=medicine)
    with pytest.raises(KithError):
        build_m1(dataclasses.replace(rx, medicine=dataclasses.replace(rx.medicine, prescribing=prescribing)))


async def test_a_magistrell_m1_is_received(client: httpx.AsyncClient) -> None:
    rx = magistrell()
    await accepted(client, to_bytes(build_m1(rx)))
    [request] = await search(
        client, f"/MedicationRequest?identifier={PRESCRIPTION_ID_SYSTEM}|{rx.envelope.msg_id}"
    )
    medication = (await client.get(f"/{request['medicationReference']['reference']}")).json()
    assert [i["extension"][0]["valueCode"] for i in medication["ingredient"]] == [
        i.kind for i in MIXTURE.ingredients
    ]
