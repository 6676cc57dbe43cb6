"""The reconciliation rules as pure functions: pairing passes, and added, stopped, changed dose or
strength and same, for coded and free-text medicines."""

from __future__ import annotations

from app.resources.medication_list.codes import FEST_VARENUMMER_SYSTEM, Aspect, ChangeKind, KeyKind
from app.resources.medication_list.diff import Change, diff, medicine, normalise_text
from tests.resources.medication_list.builders import metformin, paracet, simvastatin, statement, tran


def kinds(changes: list[Change]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.kind.value, c.key, tuple(a.value for a in c.aspects)) for c in changes]


def test_same_list_is_all_same() -> None:
    shared = [metformin(), simvastatin(), tran()]
    assert kinds(diff(shared, [tran(), simvastatin(), metformin()])) == [
        ("same", "fest:ID_TEST-METFORMIN-500", ()),
        ("same", "atc:C10AA01", ()),
        ("same", "text:tranflytende", ()),
    ]


def test_added_and_stopped() -> None:
    changes = diff([metformin(), simvastatin()], [metformin(), paracet()])
    assert kinds(changes) == [
        ("same", "fest:ID_TEST-METFORMIN-500", ()),
        ("stopped", "atc:C10AA01", ()),
        ("added", "varenr:999901", ()),
    ]
    assert changes[1].shared is not None
    assert changes[1].incoming is None
    assert changes[2].incoming is not None
    assert changes[2].shared is None


def test_changed_dose() -> None:
    (change,) = diff([simvastatin()], [simvastatin(dose="2 tabletter kveld", dose_value=2)])
    assert (change.kind, change.aspects) == (ChangeKind.CHANGED, (Aspect.DOSE,))
    # the timing alone is a dose change too
    (change,) = diff([simvastatin()], [simvastatin(frequency=2)])
    assert change.aspects == (Aspect.DOSE,)


def test_changed_strength_pairs_by_atc_not_as_stop_and_add() -> None:
    (change,) = diff([simvastatin()], [simvastatin(strength=(40, "mg"))])
    assert (change.kind, change.key, change.aspects) == (
        ChangeKind.CHANGED,
        "atc:C10AA01",
        (Aspect.STRENGTH,),
    )
    (both,) = diff([simvastatin()], [simvastatin(strength=(40, "mg"), dose="2 tabletter kveld")])
    assert both.aspects == (Aspect.STRENGTH, Aspect.DOSE)


def test_several_with_one_atc_pair_equal_strength_first() -> None:
    shared = [simvastatin(strength=(20, "mg")), simvastatin(strength=(40, "mg"))]
    incoming = [simvastatin(strength=(40, "mg")), simvastatin(strength=(20, "mg"))]
    assert [c.kind for c in diff(shared, incoming)] == [ChangeKind.SAME, ChangeKind.SAME]


def test_fest_id_wins_over_atc_and_varenummer_over_text() -> None:
    # same FEST id, another package: one medicine
    assert kinds(diff([metformin(varenr="111")], [metformin(varenr="222")]))[0][0] == "same"
    # a coded medicine with the same text as a free-text one still pairs by text in the last pass
    coded = paracet()
    free = statement("paracetamol  tablett 500mg", dose="1-2 tabletter ved behov")
    assert kinds(diff([coded], [free])) == [("same", "text:paracetamoltablett500mg", ())]


def test_free_text_medicines() -> None:
    assert medicine(tran()).free_text
    assert not medicine(paracet()).free_text
    assert kinds(diff([tran()], [tran(dose="10 ml daglig")])) == [("changed", "text:tranflytende", ("dose",))]
    assert kinds(diff([tran()], [statement("Johannesurt", dose="1 daglig", dose_value=None)])) == [
        ("stopped", "text:tranflytende", ()),
        ("added", "text:johannesurt", ()),
    ]


def test_normalised_text_keeps_norwegian_letters() -> None:
    assert normalise_text("Blåbær-ekstrakt, 5 mg") == "blåbærekstrakt5mg"
    assert normalise_text("BLÅBÆR ekstrakt 5mg") == "blåbærekstrakt5mg"
    assert normalise_text("Blabar ekstrakt 5mg") != normalise_text("Blåbær ekstrakt 5mg")


def test_codes_are_read_under_their_aliases() -> None:
    oid = statement("X", atc=None)
    oid["medicationCodeableConcept"]["coding"] = [
        {"system": "urn:oid:2.16.578.1.12.4.1.1.7180", "code": "c10aa01"}
    ]
    assert medicine(oid).codes[KeyKind.ATC] == "C10AA01"
    draft = statement("X")
    draft["medicationCodeableConcept"]["coding"] = [
        {"system": "http://hl7.org/fhir/invalid", "code": "1"},
        {"system": "http://hl7.no/fhir/NamingSystem/festLegemiddelmerkevare", "code": "ID_A"},
    ]
    assert medicine(draft).key == "fest:ID_A"


def test_a_package_fest_id_and_a_varenummer_are_different_keys() -> None:
    """festLegemiddelPakning is the package's FEST id (as e-resept's Medication carries it); the
    varenummer has its own system: the two never pair with each other."""
    package = statement("Paracetamol 500 mg")
    package["medicationCodeableConcept"]["coding"] = [
        {"system": "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning", "code": "ID_PAKNING"},
        {"system": FEST_VARENUMMER_SYSTEM, "code": "999901"},
    ]
    assert medicine(package).codes[KeyKind.FEST] == "ID_PAKNING"
    assert medicine(package).codes[KeyKind.VARENR] == "999901"
    assert medicine(package).key == "fest:ID_PAKNING"


def test_unit_spelling_and_number_form_do_not_make_a_change() -> None:
    assert (
        kinds(diff([simvastatin(strength=(20, "mg"))], [simvastatin(strength=(20.0, "MG"))]))[0][0] == "same"
    )
