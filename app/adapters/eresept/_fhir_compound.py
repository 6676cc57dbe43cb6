"""A magistrell preparation (fs:Legemiddelblanding) as a FHIR Medication, both ways.

| XML | model | FHIR `Medication` |
| --- | --- | --- |
| `Navn` | `Compound.name` | `code.text` |
| `TilbOppl` | `preparation` | extension `SD/eresept-tilberedning` |
| `Mengde` | `amount` | `amount` (numerator; denominator 1: one preparation) |
| `Legemiddelform` | `form` | `form` |
| `BestanddelLegemiddel` | `Ingredient.medicine` | `ingredient.itemReference` to a contained Medication (the product, as for any prescription) |
| `BestanddelAnnet/NavnFormStyrke` | `name` | `ingredient.itemCodeableConcept.text` |
| `BestanddelVirkestoff/Virkestoff` (Id, Navn) | `substance_id`, `name` | `ingredient.itemCodeableConcept.coding` (the FEST substance system) |
| `Styrke` (Teller/Nevner) | `strength` | `ingredient.strength` (a Ratio; without Nevner the extension `SD/eresept-styrke`) |
| `MengdeBestanddel/Mengde` | `amount` | `ingredient` extension `SD/eresept-bestanddel-mengde` |
| `Utblanding/Adqs` | `ad_qs` | `ingredient` extension `SD/eresept-ad-qs` |
| the element name | `kind` | `ingredient` extension `SD/eresept-bestanddel` |

`_fhir_medicine.medication` adds `SD/eresept-product-kind` = `Legemiddelblanding`, as to every product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.adapters.eresept.model import Compound, Ingredient, IngredientKind, Medicine, Strength
from app.adapters.kith import _fhir_common as f
from app.resources.medication_list.codes import FEST_SUBSTANCE_SYSTEM

Json = dict[str, Any]
EXT_PREPARATION = f"{f.SD}/eresept-tilberedning"
EXT_INGREDIENT_KIND = f"{f.SD}/eresept-bestanddel"
EXT_INGREDIENT_AMOUNT = f"{f.SD}/eresept-bestanddel-mengde"
EXT_AD_QS = f"{f.SD}/eresept-ad-qs"
EXT_STRENGTH = f"{f.SD}/eresept-styrke"  # a strength without Nevner (FHIR's Ratio needs both)
ONE = {"value": 1}  # the denominator of "per preparation"


def _ingredient(
    i: Ingredient, index: int, product: Callable[[Medicine], Json], contained: list[Json]
) -> Json:
    extensions = [f.ext(EXT_INGREDIENT_KIND, "Code", i.kind)]
    if i.ad_qs is not None:
        extensions.append(f.ext(EXT_AD_QS, "CodeableConcept", f.cc(i.ad_qs)))
    if i.amount is not None:
        extensions.append(f.ext(EXT_INGREDIENT_AMOUNT, "Quantity", f.quantity(i.amount)))
    if i.strength is not None and i.strength.denominator is None:
        extensions.append(f.ext(EXT_STRENGTH, "Quantity", f.quantity(i.strength.numerator)))
    out: Json = {"extension": extensions}
    if i.kind == IngredientKind.MEDICINE and i.medicine is not None:
        contained.append({**product(i.medicine), "id": f"bestanddel{index}"})
        out["itemReference"] = {"reference": f"#bestanddel{index}"}
    elif i.kind == IngredientKind.SUBSTANCE:
        coding = {"system": FEST_SUBSTANCE_SYSTEM, "code": i.substance_id or "", "display": i.name or ""}
        out["itemCodeableConcept"] = {"coding": [coding], "text": i.name or ""}
    else:
        out["itemCodeableConcept"] = {"text": i.name or ""}
    if i.strength is not None and i.strength.denominator is not None:
        numerator, denominator = i.strength.numerator, i.strength.denominator
        out["strength"] = {"numerator": f.quantity(numerator), "denominator": f.quantity(denominator)}
    return out


def compound_medication(compound: Compound, product: Callable[[Medicine], Json]) -> Json:
    """The Medication of a magistrell preparation; `product` maps a catalogue ingredient's Medicine."""
    contained: list[Json] = []
    ingredients = [_ingredient(i, n, product, contained) for n, i in enumerate(compound.ingredients, 1)]
    out: Json = {"resourceType": "Medication"}
    if contained:
        out["contained"] = contained
    out["extension"] = [f.ext(EXT_PREPARATION, "String", compound.preparation)]
    out["code"] = {"text": compound.name}
    out["form"] = f.cc(compound.form)
    out["amount"] = {"numerator": f.quantity(compound.amount), "denominator": ONE}
    if ingredients:
        out["ingredient"] = ingredients
    return out


def _ingredient_from(
    item: Json, contained: dict[str, Json], product: Callable[[Json], Medicine]
) -> Ingredient:
    kind = f.ext_value(item, EXT_INGREDIENT_KIND, "Code") or IngredientKind.OTHER
    ratio = item.get("strength")
    strength = None
    if isinstance(ratio, dict):
        strength = Strength(
            f.from_quantity(ratio.get("numerator")), f.from_quantity(ratio.get("denominator"))
        )
    elif (bare := f.ext_value(item, EXT_STRENGTH, "Quantity")) is not None:
        strength = Strength(f.from_quantity(bare))
    amount = f.ext_value(item, EXT_INGREDIENT_AMOUNT, "Quantity")
    ad_qs = f.ext_value(item, EXT_AD_QS, "CodeableConcept")
    concept = item.get("itemCodeableConcept") or {}
    coding: Json = next(
        (c for c in concept.get("coding", []) if c.get("system") == FEST_SUBSTANCE_SYSTEM), {}
    )
    reference = (item.get("itemReference") or {}).get("reference", "")
    product_resource = contained.get(reference.removeprefix("#"))
    return Ingredient(
        kind=kind,
        medicine=product(product_resource) if product_resource is not None else None,
        name=None if kind == IngredientKind.MEDICINE else concept.get("text"),
        substance_id=coding.get("code") if kind == IngredientKind.SUBSTANCE else None,
        ad_qs=None if ad_qs is None else f.coded(ad_qs),
        amount=None if amount is None else f.from_quantity(amount),
        strength=strength,
    )


def compound_from(med: Json, product: Callable[[Json], Medicine]) -> Compound:
    """The magistrell preparation of a Medication written by `compound_medication`."""
    contained = {c.get("id", ""): c for c in med.get("contained", []) if isinstance(c, dict)}
    amount = (med.get("amount") or {}).get("numerator")
    return Compound(
        name=(med.get("code") or {}).get("text") or "",
        preparation=f.ext_value(med, EXT_PREPARATION, "String") or "",
        amount=f.from_quantity(amount),
        form=f.coded(med.get("form")),
        ingredients=tuple(_ingredient_from(i, contained, product) for i in med.get("ingredient", [])),
    )
