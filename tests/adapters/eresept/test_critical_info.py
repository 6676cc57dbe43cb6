"""e-resept critical information (ki:Allergi): XML both ways, valid against ER-KritiskInformasjon, FHIR both
ways, and recognised by the core journal's rules as critical information."""

from __future__ import annotations

from datetime import datetime

import pytest
from lxml import etree

from app.adapters.eresept.critical_info import (
    BRAND_SYSTEM,
    NS_KI,
    SUBSTANCE_SYSTEM,
    allergy_from,
    allergy_key,
    allergy_resource,
    parse_allergy,
    put_allergy,
)
from app.adapters.eresept.model_lib import Allergy, DrugReaction
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Coded
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.resources.core_journal.classify import classify, load_rules
from app.resources.core_journal.codes import CriticalCategory
from app.resources.medication_list.codes import ATC_SYSTEM

PENICILLIN = Allergy(
    reaction=Coded(code="1", system="2.16.578.1.12.4.1.1.7497", display="Anafylaksi"),
    updated=datetime(2026, 11, 3, 14, 5),
    source=Coded(code="1", system="2.16.578.1.12.4.1.1.7498", display="Pasienten"),
    drug=DrugReaction(
        atc=Coded(code="J01CE02", system="2.16.578.1.12.4.1.1.7180", display="Fenoksymetylpenicillin"),
        substances=("Fenoksymetylpenicillinkalium",),
        substance_ids=("ID_0B7A1F5C-1A2B-4C3D-8E9F-0A1B2C3D4E5F",),
        brand_id="ID_5D6E7F80-9A0B-4C1D-8E2F-3A4B5C6D7E8F",
        excipient=False,
        product_name="Apocillin",
    ),
    comment="Innlagt 2019",
)


def as_xml(*allergies: Allergy) -> bytes:
    root = etree.Element(f"{{{NS_KI}}}KritiskInformasjon", nsmap={"ki": NS_KI})
    for allergy in allergies:
        put_allergy(root, allergy)
    return to_bytes(root)


def test_xml_round_trip_validates_against_the_schema(validator: XsdValidator) -> None:
    data = as_xml(PENICILLIN)
    root = parse_xml(data)
    result = validator.validate(root)
    assert result.valid, result.errors
    (el,) = root
    assert parse_allergy(el) == PENICILLIN


def test_a_reaction_naming_no_medicine_is_refused() -> None:
    bare = Allergy(PENICILLIN.reaction, PENICILLIN.updated, PENICILLIN.source, DrugReaction())
    (el,) = parse_xml(as_xml(bare))
    with pytest.raises(KithError) as refused:
        parse_allergy(el)
    assert refused.value.code.value == "T02"


def test_fhir_round_trip_keeps_the_registration() -> None:
    key = allergy_key("HER:8091390", "03846130011", PENICILLIN.drug)
    resource = allergy_resource(PENICILLIN, "Patient/p1", key)
    assert resource["category"] == ["medication"]
    assert {c["system"] for c in resource["code"]["coding"]} == {ATC_SYSTEM, BRAND_SYSTEM, SUBSTANCE_SYSTEM}
    assert resource["reaction"][0]["manifestation"][0]["coding"][0]["code"] == "1"
    assert resource["clinicalStatus"]["coding"][0]["code"] == "active"
    assert allergy_from(resource) == PENICILLIN


def test_the_registration_key_is_stable_per_sender_patient_and_medicine() -> None:
    key = allergy_key("HER:8091390", "03846130011", PENICILLIN.drug)
    assert key == allergy_key("HER:8091390", "03846130011", PENICILLIN.drug)
    assert key != allergy_key("HER:8091391", "03846130011", PENICILLIN.drug)
    assert key != allergy_key("HER:8091390", "03846130012", PENICILLIN.drug)


def test_the_core_journal_takes_it_as_critical_unless_refuted() -> None:
    rules = load_rules()
    resource = allergy_resource(PENICILLIN, "Patient/p1", "k")
    assert "criticality" not in resource  # e-resept 2.5 carries no severity: none is made up
    rule = classify(resource, rules)
    assert rule is not None
    assert rule.category is CriticalCategory.HYPERSENSITIVITY
    refuted = allergy_resource(
        Allergy(PENICILLIN.reaction, PENICILLIN.updated, PENICILLIN.source, PENICILLIN.drug, refuted=True),
        "Patient/p1",
        "k",
    )
    assert refuted["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert classify(refuted, rules) is None
