"""M25 Legemidler i bruk and M25.1–M25.4 (XSDs only, no official samples): built from the model and from
a medication list (List + MedicationStatements), XSD-valid, parsed back to the same content."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import pytest

from app.adapters.eresept import model_lib as m25
from app.adapters.eresept.fhir_legemiddelliste import medication_list_from_bundle, medication_list_to_bundle
from app.adapters.eresept.legemiddelliste import VARIANTS, Variant, build_m25, medicine_bytes, parse_m25
from app.adapters.eresept.messages import parse_m1
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Coded, Ident
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.resources.medication_list.codes import LIST_CODE, MULTIDOSE_EXTENSION, KeyKind
from app.resources.medication_list.diff import medicine
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.eresept.test_critical_info import PENICILLIN as PENICILLIN_REACTION
from tests.adapters.kith.fhir_referrals import fhir_model
from tests.resources.medication_list.builders import metformin, paracet, simvastatin

Json = dict[str, Any]
SUBJECT = {"reference": "Patient/kari"}
AT = datetime(2026, 3, 2, 9, 30)  # KITH times are Norwegian local time, without an offset
DOCTOR = m25.ListRole(
    role=Coded(code="1", display="Forskriver"),
    person=m25.ListPerson(
        hpr=Ident(
            id="9144900", type=Coded(code="HPR", system="2.16.578.1.12.4.1.1.8116", display="HPR-nummer")
        ),
        given="Kari",
        family="Lege",
        speciality=Coded(code="1", system="2.16.578.1.12.4.1.1.7426", display="Allmennmedisin"),
    ),
)
OFFICE = m25.ListRole(
    role=Coded(code="2", display="Fastlegekontor"),
    organisation=m25.ListOrganisation(
        her_id=Ident(
            id="8095068", type=Coded(code="HER", system="2.16.578.1.12.4.1.1.9051", display="HER-id")
        ),
        name="Virginia Legekontor",
        department="Legevakt",
    ),
)


def _lib(name: str) -> m25.MedicationList:
    """Everything `name` allows, on the own M1 fixture's medicine (a brand product with clock-time doses)."""
    v: Variant = VARIANTS[name]
    medicine = parse_m1(fixture_bytes("m1_merkevare.xml")).medicine
    entry = m25.ListEntry(
        id="2b3f4c5d-8e9f-4a1b-9c2d-3e4f5a6b7c8d",
        type=Coded(code="E", display="e-resept"),
        changed=AT,
        medicine=medicine,
        prescription_id="6f1c2a90-3b1e-4a57-9d55-2f0c8e7a1b23",
        prescription_expires=date(2027, 3, 1),
        started=date(2026, 3, 2),
        multidose=Coded(code="1", display="Ja") if v.multidose else None,
        with_change=False,
        roles=(DOCTOR,),
        dispenses=(
            m25.PackedDispense(
                first_dose=date(2026, 3, 9),
                last_dose=date(2026, 3, 22),
                dispense=b"<Utlevering/>",
                ref_m10="c1d2e3f4",
                repack_reason=Coded(code="1", display="Endret dosering"),
                picture="https://apotek.example/bilde/1",
            ),
        )
        if v.dispenses
        else (),
        stop=m25.Stop(at=AT, reason=Coded(code="2", display="Bivirkning"), note="Svimmel")
        if v.stop
        else None,
        questions=(
            m25.Question(
                code=Coded(code="1", system="2.16.578.1.12.4.1.1.7494", display="Spørsmål"),
                asked_at=AT,
                asked_by="8095068",
                note="Skal dosen økes?",
                to="9990002",
                answer=Coded(code="2", system="2.16.578.1.12.4.1.1.7494", display="Nei"),
                answer_note="Som før",
            ),
        )
        if v.questions
        else (),
    )
    second = dataclasses.replace(
        entry, id="second", prescription_id=None, roles=(), dispenses=(), questions=()
    )
    return m25.MedicationList(
        variant=name,
        entries=(entry, dataclasses.replace(second, stop=None)),
        roles=(OFFICE, DOCTOR),
        packing=m25.PackingInfo(order_deadline=AT, first_dose=date(2026, 3, 9), last_dose=date(2026, 3, 22))
        if v.packing
        else None,
        note="Pasienten bruker dosett",
        substitute=Coded(code="1", display="Ja") if v.substitute else None,
        allergies=(PENICILLIN_REACTION,),  # every variant carries ki:Allergi
    )


def _valid(lib: m25.MedicationList, validator: XsdValidator) -> m25.MedicationList:
    xml = build_m25(lib)
    result = validator.validate(xml)
    assert result.valid, result.errors
    return parse_m25(to_bytes(xml))


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_round_trips_and_validates(name: str, validator: XsdValidator) -> None:
    lib = _lib(name)
    assert _valid(lib, validator) == lib


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_round_trips_through_the_medication_list(name: str, validator: XsdValidator) -> None:
    lib = _lib(name)
    bundle = medication_list_to_bundle(lib, SUBJECT)
    fhir_model("Bundle").model_validate(bundle)
    for e in bundle["entry"]:
        fhir_model(e["resource"]["resourceType"]).model_validate(e["resource"])
    medication_list = bundle["entry"][0]["resource"]
    assert (medication_list["status"], medication_list["mode"]) == ("current", "working")
    assert medication_list["code"]["coding"][0]["code"] == LIST_CODE
    first = bundle["entry"][1]["resource"]
    assert first["status"] == ("stopped" if VARIANTS[name].stop else "active")
    assert medicine(first).codes[KeyKind.ATC] == "C07AB02"
    marked = any(x.get("url") == MULTIDOSE_EXTENSION for x in first["extension"])
    assert marked == VARIANTS[name].multidose  # InngarMultidose 1: the pack's multidose mark
    [allergy] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "AllergyIntolerance"
    ]
    assert allergy["patient"] == SUBJECT
    assert allergy["code"]["coding"][0]["code"] == "J01CE02"
    back = medication_list_from_bundle(bundle, name)
    assert back == lib
    assert _valid(back, validator) == lib


def test_the_same_reaction_from_the_same_sender_keeps_its_identity() -> None:
    """The sender's next list updates its registration of a reaction instead of adding another."""
    first = medication_list_to_bundle(
        _lib("M25"), SUBJECT, sender_key="HER:8095068", patient_key="03846130011"
    )
    again = medication_list_to_bundle(
        _lib("M25.2"), SUBJECT, sender_key="HER:8095068", patient_key="03846130011"
    )
    other = medication_list_to_bundle(
        _lib("M25"), SUBJECT, sender_key="HER:9990001", patient_key="03846130011"
    )

    def key(bundle: dict[str, Any]) -> str:
        [a] = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "AllergyIntolerance"
        ]
        return str(a["identifier"][0]["value"])

    assert key(first) == key(again) != key(other)


def test_m25_2_and_m25_3_are_the_multidose_variants() -> None:
    """Pakkeinfo (the packing schedule) only in M25.2/M25.3 (and the master); a stop not in them."""
    assert {k for k, v in VARIANTS.items() if v.packing} == {"M25", "M25.2", "M25.3"}
    with pytest.raises(KithError) as caught:
        build_m25(dataclasses.replace(_lib("M25.1"), variant="M25.3"))
    assert caught.value.code == "T02"
    with pytest.raises(KithError):
        build_m25(dataclasses.replace(_lib("M25.2"), variant="M25.4"))


def _pack_bundle() -> Json:
    """A medication list as the medication list pack stores it (its own statement shape, no e-resept
    extensions): FEST legemiddel id, varenummer, ATC only."""
    statements = [
        {**s, "id": f"st-{i}", "dateAsserted": "2026-03-01T10:00:00+01:00"}
        for i, s in enumerate((metformin(), simvastatin(), paracet()))
    ]
    medication_list = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "subject": SUBJECT,
        "entry": [{"item": {"reference": f"MedicationStatement/{s['id']}"}} for s in statements],
    }
    entries = [{"fullUrl": "List/kari-list", "resource": medication_list}]
    entries += [{"fullUrl": f"MedicationStatement/{s['id']}", "resource": s} for s in statements]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


@pytest.mark.parametrize("name", ["M25", "M25.2", "M25.3"])
def test_a_list_the_pack_stored_builds_a_valid_m25(name: str, validator: XsdValidator) -> None:
    lib = medication_list_from_bundle(_pack_bundle(), name)
    assert [e.id for e in lib.entries] == ["st-0", "st-1", "st-2"]
    again = _valid(lib, validator)
    assert again == lib  # an unknown brand name or varenummer is written empty and read as unknown
    assert [e.medicine.prescribing.medicine.kind for e in again.entries] == [
        "LegemiddelMerkevare",  # by its FEST LegemiddelMerkevare id
        "Legemiddelpakning",  # ATC only: a package, its mandatory Varenr written empty
        "Legemiddelpakning",  # by its varenummer
    ]
    statements = [e["resource"] for e in medication_list_to_bundle(again, SUBJECT)["entry"][1:]]
    originals = [e["resource"] for e in _pack_bundle()["entry"][1:]]
    # the keys the pack's reconciliation pairs on survive: FEST id, varenummer, ATC, text
    assert [medicine(s).codes for s in statements] == [medicine(o).codes for o in originals]
    assert [s["dosage"][0]["text"] for s in statements] == [o["dosage"][0]["text"] for o in originals]


def test_an_entry_holds_a_resept_dok_legemiddel() -> None:
    medicine_xml = medicine_bytes(parse_m1(fixture_bytes("m1_merkevare.xml")).medicine)
    assert b"ReseptDokLegemiddel" in medicine_xml
    wrong = to_bytes(build_m25(_lib("M25.4"))).replace(
        b"ReseptDokLegemiddelB64>", b"ReseptDokLegemiddelB64>PE11bHRpLz4=", 1
    )
    with pytest.raises(KithError):
        parse_m25(wrong)


def test_critical_information_is_refused_not_dropped() -> None:
    data = to_bytes(build_m25(_lib("M25.4"))).replace(
        b"<Merknad>",
        b'<ki:Allergi xmlns:ki="http://www.kith.no/xmlstds/eresept/ki/2013-04-25"/><Merknad>',
        1,
    )
    with pytest.raises(KithError) as caught:
        parse_m25(data)
    assert caught.value.code == "T02"


def test_another_document_is_t10() -> None:
    with pytest.raises(KithError) as caught:
        parse_m25(fixture_bytes("m1_merkevare.xml"))
    assert caught.value.code == "T10"
