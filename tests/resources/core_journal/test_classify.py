"""The rules (rules.json) and the pure functions of the flow: classification, same substance or code,
building an entry and merging sources into it."""

from __future__ import annotations

from types import SimpleNamespace

from app.fhir.context import SystemPrincipal
from app.resources.core_journal.classify import (
    Writer,
    claim_criteria,
    classify,
    concept_keys,
    load_rules,
    merge,
    new_entry,
    parse_rules,
    patient_reference,
    same_concept,
    source_extension,
    source_references,
    sources,
    withdraw,
)
from app.resources.core_journal.codes import (
    CATEGORY_SYSTEM,
    CriticalCategory,
    category_coding,
    code_system,
    is_entry,
)
from app.resources.core_journal.guard import refusal
from tests.resources.core_journal.builders import (
    ADDISON,
    DIALYSIS,
    PACEMAKER,
    PEANUT,
    PENICILLIN,
    alert,
    allergy,
    condition,
    implant,
    treatment,
)

RULES = load_rules()
HOSPITAL = Writer(("998765432",), "1234567", "DIPS Arena")
GP = Writer(("912345678",), "7654321", "CGM Allmenn")


def test_the_rules_file_names_every_rule_with_a_known_category() -> None:
    assert [r.resource_type for r in RULES] == [
        "AllergyIntolerance",
        "AllergyIntolerance",
        "Condition",
        "Device",
        "Procedure",
        "Flag",
    ]
    assert {r.category for r in RULES} <= set(CriticalCategory)
    assert "http://hl7.org/fhir/sid/icd-10|E27.1" in RULES[2].codes
    assert RULES[1].tags == {f"{CATEGORY_SYSTEM}|overfolsomhet"}


def test_an_allergy_its_source_tags_as_critical_is_critical_whatever_its_criticality() -> None:
    tagged = {
        **allergy(PENICILLIN, criticality="low"),
        "meta": {"tag": [category_coding(CriticalCategory.HYPERSENSITIVITY)]},
    }
    rule = classify(tagged, RULES)
    assert rule is not None
    assert rule.category is CriticalCategory.HYPERSENSITIVITY
    other_tag = {**tagged, "meta": {"tag": [{"system": CATEGORY_SYSTEM, "code": "smitte"}]}}
    assert classify(other_tag, RULES) is None


def test_a_high_criticality_allergy_is_critical_a_low_one_is_not() -> None:
    rule = classify(allergy(PENICILLIN), RULES)
    assert rule is not None
    assert rule.category is CriticalCategory.HYPERSENSITIVITY
    assert classify(allergy(PENICILLIN, "low"), RULES) is None
    assert classify({k: v for k, v in allergy(PENICILLIN).items() if k != "criticality"}, RULES) is None


def test_a_condition_is_critical_only_with_a_listed_code() -> None:
    assert classify(condition(ADDISON), RULES) is not None
    assert classify(condition({**ADDISON, "code": "E11"}), RULES) is None


def test_refuted_and_entered_in_error_are_never_critical() -> None:
    for status in ("refuted", "entered-in-error"):
        refuted = allergy(PENICILLIN, verificationStatus={"coding": [{"system": "x", "code": status}]})
        assert classify(refuted, RULES) is None


def test_the_packs_own_entries_are_not_classified_again() -> None:
    entry = new_entry(allergy(PENICILLIN), RULES[0], source_extension("AllergyIntolerance/a", {}, HOSPITAL))
    assert is_entry(entry)
    assert classify(entry, RULES) is None


def test_rules_are_data() -> None:
    rules = parse_rules(
        {"rules": [{"name": "all", "resourceType": "AllergyIntolerance", "category": "overfolsomhet"}]}
    )
    assert classify(allergy(PEANUT, "low"), rules) is rules[0]


def test_same_concept_by_any_shared_coding_or_by_text() -> None:
    both = allergy(PENICILLIN)
    both["code"]["coding"].append({"system": "urn:oid:2.16.578.1.12.4.1.1.7424", "code": "X"})
    assert same_concept(both, allergy(PENICILLIN))
    assert not same_concept(allergy(PEANUT), allergy(PENICILLIN))
    a, b = {"code": {"text": "Penicillin  "}}, {"code": {"text": "penicillin"}}
    assert same_concept(a, b)
    assert concept_keys({"code": {}}) == frozenset()


def test_patient_reference_from_patient_or_subject() -> None:
    assert patient_reference(allergy(PENICILLIN)) == "Patient/kari"
    assert patient_reference(condition(ADDISON)) == "Patient/kari"
    assert patient_reference({"subject": {"reference": "http://x/fhir/Patient/p1"}}) == "Patient/p1"
    assert patient_reference({"subject": {"reference": "Group/g"}}) is None


def test_the_writer_from_a_personnel_principal_or_a_system_principal() -> None:
    personnel = SimpleNamespace(orgnr="1", child_orgnr="2", hpr="3", source_system="EPJ", client_id="c")
    assert Writer.of(personnel) == Writer(("1", "2"), "3", "EPJ")
    assert Writer.of(SystemPrincipal("eresept", "M1 received")).system == "helsebro/eresept"


def test_a_new_entry_takes_the_clinical_content_category_and_source() -> None:
    source = allergy(PENICILLIN, recorder={"reference": "Practitioner/hospital-doctor"})
    entry = new_entry(source, RULES[0], source_extension("AllergyIntolerance/a", source, HOSPITAL))
    assert entry["code"] == source["code"]
    assert entry["criticality"] == "high"
    assert {"system": CATEGORY_SYSTEM, "code": "overfolsomhet", "display": "Overfølsomhetsreaksjon"} in entry[
        "meta"
    ]["tag"]
    [ext] = sources(entry)
    parts = {p["url"]: p for p in ext["extension"]}
    assert parts["author"]["valueReference"] == {"reference": "Practitioner/hospital-doctor"}
    assert parts["system"]["valueString"] == "DIPS Arena"
    assert parts["organization"]["valueReference"]["identifier"]["value"] == "998765432"


def test_merging_lists_every_source_once_in_a_stable_order() -> None:
    first = allergy(PENICILLIN, criticality="low")
    entry = new_entry(first, RULES[0], source_extension("AllergyIntolerance/b", first, HOSPITAL))
    entry["id"] = "e"
    reaction = {"manifestation": [{"text": "Urticaria"}]}
    second = allergy(PENICILLIN, reaction=[reaction])
    merged = merge(entry, second, source_extension("AllergyIntolerance/a", second, GP))
    assert merged is not None
    assert sorted(source_references(merged)) == [
        "AllergyIntolerance/a",
        "AllergyIntolerance/b",
    ]
    assert [e["extension"][0]["valueReference"]["reference"] for e in sources(merged)] == [
        "AllergyIntolerance/a",
        "AllergyIntolerance/b",
    ]
    assert merged["criticality"] == "high"
    assert merged["reaction"] == [reaction]
    assert merge(merged, second, source_extension("AllergyIntolerance/a", second, GP)) is None


def test_a_clinicians_verification_on_the_entry_survives_a_merge() -> None:
    source = allergy(PENICILLIN)
    entry = new_entry(source, RULES[0], source_extension("AllergyIntolerance/a", source, HOSPITAL))
    entry["verificationStatus"] = {"coding": [{"system": "x", "code": "unconfirmed"}]}
    merged = merge(entry, source, source_extension("AllergyIntolerance/b", source, GP))
    assert merged is not None
    assert merged["verificationStatus"] == entry["verificationStatus"]


def test_the_category_code_system_lists_every_category() -> None:
    assert [c["code"] for c in code_system()["concept"]] == [str(c) for c in CriticalCategory]


def test_only_the_pack_creates_entries_and_a_clinician_sets_only_statuses() -> None:
    source = allergy(PENICILLIN)
    entry = new_entry(source, RULES[0], source_extension("AllergyIntolerance/a", source, HOSPITAL))
    assert refusal("create", None, entry) is not None
    assert refusal("create", None, source) is None
    assert refusal("update", source, {**source, "criticality": "low"}) is None  # not an entry
    stored = {**entry, "id": "e", "meta": {**entry["meta"], "versionId": "3"}}
    refuted = {**entry, "id": "e", "verificationStatus": {"coding": [{"system": "x", "code": "refuted"}]}}
    assert refusal("update", stored, refuted) is None
    assert refusal("update", stored, {**entry, "criticality": "low"}) is not None
    assert refusal("update", stored, {k: v for k, v in entry.items() if k != "extension"}) is not None
    untagged = {**entry, "meta": {"source": "x"}}
    assert refusal("update", stored, untagged) is not None


def test_withdrawing_a_source_keeps_the_others_and_the_last_one_ends_the_entry() -> None:
    source = allergy(PENICILLIN)
    entry = new_entry(source, RULES[0], source_extension("AllergyIntolerance/a", source, HOSPITAL))
    both = merge(entry, source, source_extension("AllergyIntolerance/b", source, GP))
    assert both is not None
    one = withdraw(both, "AllergyIntolerance/a")
    assert one is not None
    assert source_references(one) == {"AllergyIntolerance/b"}
    assert withdraw(one, "AllergyIntolerance/b") is None


def test_implants_ongoing_treatments_and_clinical_flags_are_critical() -> None:
    device = classify(implant(PACEMAKER), RULES)
    assert device is not None
    assert device.category is CriticalCategory.TREATMENT_IMPLANT
    assert (
        classify(implant({**PACEMAKER, "code": "87405001"}), RULES) is None
    )  # another device: not on the list
    procedure = classify(treatment(DIALYSIS), RULES)
    assert procedure is not None
    assert procedure.category is CriticalCategory.TREATMENT_IMPLANT
    flag = classify(alert("Voldsrisiko"), RULES)
    assert flag is not None
    assert flag.category is CriticalCategory.OTHER
    assert classify(alert("Betalingsavtale", category="admin"), RULES) is None


def test_a_device_is_about_its_type_and_claims_its_entry_by_it() -> None:
    assert concept_keys(implant(PACEMAKER)) == {f"{PACEMAKER['system']}|{PACEMAKER['code']}"}
    assert same_concept(implant(PACEMAKER), implant(PACEMAKER, patient="ola"))
    claim = claim_criteria("Patient/kari", implant(PACEMAKER), "t|entry")
    assert claim is not None
    assert "type=" in claim
    assert "code=" not in claim
    assert claim_criteria("Patient/kari", alert("Voldsrisiko"), "t|entry") is None  # R4 Flag: no code search


def test_an_entry_for_a_device_copies_what_identifies_it() -> None:
    rule = classify(implant(PACEMAKER), RULES)
    assert rule is not None
    entry = new_entry(implant(PACEMAKER), rule, source_extension("Device/d1", implant(PACEMAKER), HOSPITAL))
    assert entry["type"]["coding"] == [PACEMAKER]
    assert entry["patient"] == {"reference": "Patient/kari"}
    assert entry["status"] == "active"
    other = {**implant(PACEMAKER), "type": {"coding": [PACEMAKER, {"system": "urn:x", "code": "y"}]}}
    merged = merge(entry, other, source_extension("Device/d2", other, GP))
    assert merged is not None
    assert len(merged["type"]["coding"]) == 2
    assert source_references(merged) == {"Device/d1", "Device/d2"}
