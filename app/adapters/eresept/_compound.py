"""fs:Legemiddelblanding (magistrell forskrivning, Forskrivning-2013-10-08.xsd): a mixture the pharmacy
prepares, read and written. Its catalogue ingredients (BestanddelLegemiddel) are products as in any
Forskrivning, read and written by `_forskrivning`'s product functions (passed in: no import cycle)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from lxml import etree

from app.adapters.eresept.model import Compound, Ingredient, IngredientKind, Medicine, Strength
from app.adapters.kith import _xml as x
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import Quantity

NS_FS = "http://www.kith.no/xmlstds/eresept/forskrivning/2013-10-08"  # the Forskrivning namespace (fs:)
ReadProduct = Callable[[etree._Element], Medicine]
WriteProduct = Callable[[etree._Element, Medicine], None]


def required_quantity(el: etree._Element, tag: str) -> Quantity:
    found = x.quantity(x.child(el, NS_FS, tag))
    if found is None:
        raise KithError(AppRecError.NOT_VALID, f"mandatory element <{tag}> is missing")
    return found


def _strength(el: etree._Element | None) -> Strength | None:
    if el is None:
        return None
    return Strength(required_quantity(el, "Teller"), x.quantity(x.child(el, NS_FS, "Nevner")))


def _ingredient(el: etree._Element, kind: str, read_product: ReadProduct) -> Ingredient:
    adqs = x.child(el, NS_FS, "Utblanding")
    amount = x.child(el, NS_FS, "MengdeBestanddel")
    measured = Ingredient(
        kind,
        ad_qs=None if adqs is None else x.coded(adqs, NS_FS, "Adqs"),
        amount=None if amount is None else required_quantity(amount, "Mengde"),
        strength=_strength(x.child(el, NS_FS, "Styrke")),
    )
    if kind == IngredientKind.MEDICINE:
        return replace(measured, medicine=read_product(el))
    if kind == IngredientKind.OTHER:
        return replace(measured, name=x.required_text(el, NS_FS, "NavnFormStyrke"))
    substance = x.require(el, NS_FS, "Virkestoff")
    return replace(
        measured,
        name=x.required_text(substance, NS_FS, "Navn"),
        substance_id=x.required_text(substance, NS_FS, "Id"),
    )


def parse_compound(el: etree._Element, read_product: ReadProduct) -> Compound:
    """Read fs:Legemiddelblanding."""
    form = x.coded(el, NS_FS, "Legemiddelform")
    if form is None:
        raise KithError(AppRecError.NOT_VALID, "mandatory element <Legemiddelform> is missing")
    return Compound(
        name=x.required_text(el, NS_FS, "Navn"),
        preparation=x.required_text(el, NS_FS, "TilbOppl"),
        amount=required_quantity(el, "Mengde"),
        form=form,
        ingredients=tuple(
            _ingredient(i, kind, read_product)
            for kind in IngredientKind.ALL
            for i in x.children(el, NS_FS, kind)
        ),
    )


def _put_measure(parent: etree._Element, ingredient: Ingredient) -> None:
    """The ingredient's one measure, in the XSD's choice."""
    if ingredient.ad_qs is not None:
        x.put_coded(x.sub(parent, NS_FS, "Utblanding"), NS_FS, "Adqs", ingredient.ad_qs, cv=False)
    elif ingredient.amount is not None:
        x.put_quantity(x.sub(parent, NS_FS, "MengdeBestanddel"), NS_FS, "Mengde", ingredient.amount)
    elif ingredient.strength is not None:
        s = x.sub(parent, NS_FS, "Styrke")
        x.put_quantity(s, NS_FS, "Teller", ingredient.strength.numerator)
        x.put_quantity(s, NS_FS, "Nevner", ingredient.strength.denominator)
    else:
        raise KithError(AppRecError.NOT_VALID, f"a {ingredient.kind} needs an amount, a strength or ad q.s.")


def put_compound(parent: etree._Element, compound: Compound, write_product: WriteProduct) -> None:
    """Write fs:Legemiddelblanding under `parent` (ingredients grouped by kind, as the XSD orders them)."""
    el = x.sub(parent, NS_FS, "Legemiddelblanding")
    x.sub(el, NS_FS, "Navn", compound.name)
    x.sub(el, NS_FS, "TilbOppl", compound.preparation)
    x.put_quantity(el, NS_FS, "Mengde", compound.amount)
    x.put_coded(el, NS_FS, "Legemiddelform", compound.form)
    for kind in IngredientKind.ALL:
        for ingredient in (i for i in compound.ingredients if i.kind == kind):
            i_el = x.sub(el, NS_FS, kind)
            if kind == IngredientKind.MEDICINE:
                if ingredient.medicine is None:
                    raise KithError(AppRecError.NOT_VALID, "a BestanddelLegemiddel names no product")
                write_product(i_el, ingredient.medicine)
            elif kind == IngredientKind.OTHER:
                x.sub(i_el, NS_FS, "NavnFormStyrke", ingredient.name or "")
            else:
                substance = x.sub(i_el, NS_FS, "Virkestoff")
                x.sub(substance, NS_FS, "Id", ingredient.substance_id or "")
                x.sub(substance, NS_FS, "Navn", ingredient.name or "")
            _put_measure(i_el, ingredient)
