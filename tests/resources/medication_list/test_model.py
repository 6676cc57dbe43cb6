"""The medication list's resources as pure functions: the List, new, changed and stopped statements,
the free-text mark and the Provenance."""

from __future__ import annotations

from datetime import UTC, datetime

from app.resources.medication_list import model
from app.resources.medication_list.codes import FREE_TEXT_EXTENSION, LIST_IDENTIFIER_SYSTEM
from tests.resources.medication_list.builders import metformin, simvastatin, tran

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def test_empty_list_and_entries() -> None:
    empty = model.empty_list("kari")
    assert (empty["status"], empty["mode"], empty["subject"]) == (
        "current",
        "working",
        {"reference": "Patient/kari"},
    )
    assert empty["identifier"] == [{"system": LIST_IDENTIFIER_SYSTEM, "value": "kari"}]
    assert model.list_criteria("kari") == f"{LIST_IDENTIFIER_SYSTEM}|kari"
    stored = {**empty, "id": "l1", "meta": {"versionId": "3"}}
    written = model.with_entries(stored, ["MedicationStatement/a", "urn:uuid:x"], AT)
    assert "meta" not in written
    assert [e["item"]["reference"] for e in written["entry"]] == ["MedicationStatement/a", "urn:uuid:x"]
    assert model.entry_ids(written) == ["a"]
    assert "entry" not in model.with_entries(stored, [], AT)  # R4: no empty arrays


def test_new_statement_is_the_patients_and_marks_free_text() -> None:
    incoming = {**tran(patient="someone-else"), "id": "theirs", "meta": {"versionId": "9"}}
    statement = model.new_statement(incoming, "kari", AT)
    assert statement["subject"] == {"reference": "Patient/kari"}
    assert "id" not in statement
    assert "meta" not in statement
    assert {"url": FREE_TEXT_EXTENSION, "valueBoolean": True} in statement["extension"]
    coded = model.new_statement(metformin(), "kari", AT)
    assert FREE_TEXT_EXTENSION not in str(coded.get("extension"))


def test_links_to_prescription_and_dispense_are_kept() -> None:
    linked = metformin(
        basedOn=[{"reference": "MedicationRequest/r1"}], derivedFrom=[{"reference": "MedicationDispense/d1"}]
    )
    statement = model.new_statement(linked, "kari", AT)
    assert statement["basedOn"] == [{"reference": "MedicationRequest/r1"}]
    assert statement["derivedFrom"] == [{"reference": "MedicationDispense/d1"}]


def test_changed_keeps_identity_and_takes_the_new_dose() -> None:
    shared = {**simvastatin(), "id": "s1", "meta": {"versionId": "2"}}
    changed = model.changed_statement(shared, simvastatin(dose="2 tabletter kveld"), AT)
    assert (changed["id"], changed["status"], changed["dosage"][0]["text"]) == (
        "s1",
        "active",
        "2 tabletter kveld",
    )


def test_stopped_keeps_the_statement_with_reason_and_end() -> None:
    shared = {**simvastatin(), "id": "s1", "effectivePeriod": {"start": "2025-01-01"}}
    stopped = model.stopped_statement(shared, "Muskelsmerter", AT)
    assert stopped["status"] == "stopped"
    assert stopped["statusReason"] == [{"text": "Muskelsmerter"}]
    assert stopped["effectivePeriod"] == {"start": "2025-01-01", "end": "2026-12-07T09:30:00+00:00"}
    assert stopped["medicationCodeableConcept"] == shared["medicationCodeableConcept"]


def test_provenance_names_target_patient_who_when_why() -> None:
    agent = {"who": {"display": "Fastlegen"}}
    provenance = model.provenance("MedicationStatement/s1", "kari", "UPDATE", "Seponert", agent, AT)
    assert provenance["target"] == [{"reference": "MedicationStatement/s1"}, {"reference": "Patient/kari"}]
    assert provenance["recorded"] == "2026-12-07T09:30:00+00:00"
    assert provenance["activity"]["coding"][0]["code"] == "UPDATE"
    assert provenance["reason"] == [{"text": "Seponert"}]
    assert provenance["agent"] == [agent]
