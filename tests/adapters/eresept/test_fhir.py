"""XML → model → FHIR → model → XML for M1, M5 and M10: the FHIR is valid R4 (fhir.resources), the XML
written back validates against its XSD, and parsing it again gives the same clinical content."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.adapters.eresept._fhir_medicine import FEST_ID_SYSTEMS
from app.adapters.eresept.from_fhir import (
    deletion_from_request,
    dispense_from_bundle,
    prescription_from_bundle,
    recall_from_request,
)
from app.adapters.eresept.messages import (
    build_m1,
    build_m5,
    build_m7,
    build_m10,
    parse_m1,
    parse_m5,
    parse_m7,
    parse_m10,
)
from app.adapters.eresept.model import Deletion, Dispense, Prescription, ProductKind, Recall
from app.adapters.eresept.to_fhir import (
    dispense_to_bundle,
    mark_deleted,
    prescription_to_bundle,
    revoke,
)
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Coded
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.resources.medication_list.codes import ATC_SYSTEM
from app.resources.no_basis.identifiers import FNR_SYSTEM, HPR_SYSTEM
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.kith.fhir_referrals import fhir_model
from tests.adapters.legacy import LEGACY_MISSING, legacy_dir, legacy_files

Json = dict[str, Any]
M5_SAMPLES = "samples/eresept/*/M5 *.xml"


def _m1_inputs() -> list[object]:
    return [*legacy_files("samples/eresept/*/M1 *.xml"), pytest.param(None, id="own-fixture")]


def _m1_bytes(path: Path | None) -> bytes:
    return fixture_bytes("m1_merkevare.xml") if path is None else path.read_bytes()


def _valid_fhir(bundle: Json) -> None:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        fhir_model(resource["resourceType"]).model_validate(resource)


def _resource(bundle: Json, resource_type: str) -> Json:
    found: Json = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    )
    return found


def _clinical(rx: Prescription) -> tuple[object, ...]:
    """What must survive the round trip: patient, prescriber (HPR), the prescription itself."""
    assert rx.envelope.patient is not None
    prescriber = rx.envelope.sender.professional
    assert prescriber is not None
    return (
        rx.envelope.patient,
        prescriber.idents,
        prescriber.name,
        rx.envelope.msg_id,
        rx.medicine,
        rx.issued,
        rx.expires,
        rx.earliest_dispense,
        rx.reference,
        rx.free_card,
        rx.last_prescription,
        rx.fest_updated,
    )


@pytest.mark.parametrize("path", _m1_inputs())
def test_m1_round_trip_through_fhir(path: Path | None, validator: XsdValidator) -> None:
    rx = parse_m1(_m1_bytes(path))
    bundle = prescription_to_bundle(rx)
    _valid_fhir(bundle)
    back = prescription_from_bundle(bundle)
    xml = build_m1(back)
    result = validator.validate(xml)
    assert result.valid, result.errors
    assert _clinical(parse_m1(to_bytes(xml))) == _clinical(rx)


def test_m1_fhir_content() -> None:
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    bundle = prescription_to_bundle(rx)
    request = _resource(bundle, "MedicationRequest")
    assert request["status"] == "active"
    assert request["authoredOn"] == "2026-03-02"
    assert request["dispenseRequest"]["validityPeriod"] == {"start": "2026-03-03", "end": "2027-03-01"}
    assert request["dispenseRequest"]["numberOfRepeatsAllowed"] == 3
    assert request["dispenseRequest"]["quantity"] == {"value": 2.0, "unit": "pakning"}
    assert request["substitution"]["allowedBoolean"] is False
    first = request["dosageInstruction"][0]
    assert first["text"] == "1 tablett morgen og kveld"
    assert first["timing"]["repeat"]["timeOfDay"] == ["08:00:00"]
    assert first["timing"]["repeat"]["boundsPeriod"] == {"start": "2026-03-02", "end": "2026-09-01"}
    assert request["dosageInstruction"][1]["timing"]["repeat"]["when"] == ["EVE"]
    assert request["dosageInstruction"][1]["doseAndRate"][0]["doseQuantity"] == {"value": 1.0, "unit": "stk"}
    medication = _resource(bundle, "Medication")
    assert {"system": ATC_SYSTEM, "code": "C07AB02", "display": "Metoprolol"} in medication["code"]["coding"]
    assert medication["code"]["text"] == "Selo-Zok Depottab 50 mg"
    patient = _resource(bundle, "Patient")
    assert patient["identifier"][0]["system"] == FNR_SYSTEM
    practitioner = _resource(bundle, "Practitioner")
    assert practitioner["identifier"][0] == {
        **practitioner["identifier"][0],
        "system": HPR_SYSTEM,
        "value": "9144900",
    }
    role = _resource(bundle, "PractitionerRole")
    assert request["requester"]["reference"] == next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"] is role
    )


def test_the_same_message_gives_the_same_bundle() -> None:
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    assert prescription_to_bundle(rx) == prescription_to_bundle(rx)


# --- M5 -----------------------------------------------------------------------------------------------------


def _m5_pairs() -> list[object]:
    """(M5, the M1 it recalls): the official pair (same folder, same ReseptId) and the own fixtures."""
    own = pytest.param(None, None, id="own-fixtures")
    root = legacy_dir()
    if root is None:
        return [
            pytest.param(None, None, marks=LEGACY_MISSING, id="legacy-data-missing"),
            own,
        ]
    pairs = [pytest.param(p, p.parent / "M1 Resept.xml", id=p.name) for p in sorted(root.glob(M5_SAMPLES))]
    return [*pairs, own]


@pytest.mark.parametrize(("m5_path", "m1_path"), _m5_pairs())
def test_m5_revokes_the_m1_request_and_maps_back(
    m5_path: Path | None, m1_path: Path | None, validator: XsdValidator
) -> None:
    recall = parse_m5(fixture_bytes("m5_tilbakekalling.xml") if m5_path is None else m5_path.read_bytes())
    m1 = parse_m1(_m1_bytes(m1_path))
    bundle = prescription_to_bundle(m1)
    request = _resource(bundle, "MedicationRequest")
    revoked = revoke(request, recall)
    fhir_model("MedicationRequest").model_validate(revoked)
    assert revoked["status"] == "cancelled"
    assert revoked["statusReason"]["coding"][0]["code"] == recall.reason.code
    assert revoked["statusReason"]["text"] == recall.note
    assert revoke(request, recall, dispensed=True)["status"] == "stopped"
    back = recall_from_request(
        revoked, recall.envelope.sender, _resource(bundle, "Patient"), msg_id=recall.envelope.msg_id
    )
    xml = build_m5(back)
    result = validator.validate(xml)
    assert result.valid, result.errors
    again = parse_m5(to_bytes(xml))
    assert (again.prescription_id, again.reason, again.note, again.new_prescription_id) == (
        recall.prescription_id,
        recall.reason,
        recall.note,
        recall.new_prescription_id,
    )
    assert again.envelope.patient == m1.envelope.patient


def test_a_recall_for_another_prescription_is_refused() -> None:
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    request = _resource(prescription_to_bundle(rx), "MedicationRequest")
    recall = Recall(envelope=rx.envelope, prescription_id="another-prescription", reason=Coded(code="4"))
    with pytest.raises(KithError):
        revoke(request, recall)


# --- M10 ----------------------------------------------------------------------------------------------------


def _dispense_clinical(d: Dispense) -> tuple[object, ...]:
    return (
        d.envelope.patient,
        d.envelope.msg_id,
        d.prescription_id,
        d.dispensed_on,
        d.dispenser,
        d.medicine,
        d.cancelled,
        d.completed,
        d.customer_reserved_substitution,
        d.no_report_to_gp,
        d.employee_id,
    )


@pytest.mark.parametrize(
    "path", [*legacy_files("samples/eresept/*/M10 *.xml"), pytest.param(None, id="own-fixture")]
)
def test_m10_round_trip_through_fhir(path: Path | None, validator: XsdValidator) -> None:
    dispense = parse_m10(fixture_bytes("m10_utlevering.xml") if path is None else path.read_bytes())
    bundle = dispense_to_bundle(dispense)
    _valid_fhir(bundle)
    md = _resource(bundle, "MedicationDispense")
    assert md["status"] == "completed"
    assert md["whenHandedOver"] == dispense.dispensed_on.isoformat()
    assert md["authorizingPrescription"][0]["identifier"]["value"] == dispense.prescription_id
    back = dispense_from_bundle(bundle)
    xml = build_m10(back)
    result = validator.validate(xml)
    assert result.valid, result.errors
    assert _dispense_clinical(parse_m10(to_bytes(xml))) == _dispense_clinical(dispense)


# --- M7 -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M7 *.xml"))
def test_m7_marks_the_recalled_request_deleted_and_maps_back(path: Path, validator: XsdValidator) -> None:
    deletion = parse_m7(path.read_bytes())
    assert deletion.envelope.conversation_ref is not None
    m1 = parse_m1((path.parent / "M1 Resept.xml").read_bytes())
    recall = parse_m5((path.parent / "M5 Tilbakekalling av resept.xml").read_bytes())
    assert deletion.envelope.conversation_ref.parent_id == recall.envelope.msg_id  # M7 answers the M5
    bundle = prescription_to_bundle(m1)
    revoked = revoke(_resource(bundle, "MedicationRequest"), recall)
    deleted = mark_deleted(revoked, deletion)
    fhir_model("MedicationRequest").model_validate(deleted)
    assert deleted["status"] == "cancelled"
    assert deleted["statusReason"] == revoked["statusReason"]
    back = deletion_from_request(
        deleted,
        m1.envelope.sender,
        _resource(bundle, "Patient"),
        msg_id=deletion.envelope.msg_id,
        in_reply_to=deletion.envelope.conversation_ref,
    )
    xml = build_m7(back)
    result = validator.validate(xml)
    assert result.valid, result.errors
    again = parse_m7(to_bytes(xml))
    assert again.deleted_at == deletion.deleted_at
    assert again.envelope.conversation_ref == deletion.envelope.conversation_ref


def test_m7_on_an_active_request_cancels_it() -> None:
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    request = _resource(prescription_to_bundle(rx), "MedicationRequest")
    deletion = Deletion(envelope=rx.envelope, deleted_at=datetime(2027, 3, 2, 0, 5, tzinfo=UTC))
    deleted = mark_deleted(request, deletion)
    assert deleted["status"] == "cancelled"
    assert mark_deleted(deleted, deletion)["extension"].count(deleted["extension"][-1]) == 1


def _as_substance_prescription() -> bytes:
    """The M1 fixture as a generic (virkestoff) prescription: LegemiddelVirkestoff with its FEST id."""
    text = fixture_bytes("m1_merkevare.xml").decode("iso-8859-1")
    start, end = text.index("<LegemiddelMerkevare>"), text.index("</LegemiddelMerkevare>")
    product = text[start:end].replace("<LegemiddelMerkevare>", "<LegemiddelVirkestoff>")
    product = product.replace("<Varenavn>Selo-Zok</Varenavn>", "").replace(
        "Selo-Zok Depottab", "Metoprolol Depottab"
    )
    text = text[:start] + product + "</LegemiddelVirkestoff>" + text[end + len("</LegemiddelMerkevare>") :]
    return text.encode("iso-8859-1")


def test_substance_prescription_round_trips(validator: XsdValidator) -> None:
    data = _as_substance_prescription()
    rx = parse_m1(data)
    assert rx.medicine.prescribing.medicine.kind == ProductKind.SUBSTANCE
    assert validator.validate(build_m1(rx)).valid
    bundle = prescription_to_bundle(rx)
    _valid_fhir(bundle)
    codings = _resource(bundle, "Medication")["code"]["coding"]
    assert {
        "system": FEST_ID_SYSTEMS[ProductKind.SUBSTANCE],
        "code": rx.medicine.prescribing.medicine.fest_id,
    } in codings
    back = prescription_from_bundle(bundle)
    xml = build_m1(back)
    assert validator.validate(xml).valid
    assert _clinical(parse_m1(to_bytes(xml))) == _clinical(rx)


def _with_dosage(dosage_xml: str) -> bytes:
    """The M1 fixture with its first Dosering's doses replaced by `dosage_xml`."""
    text = fixture_bytes("m1_merkevare.xml").decode("iso-8859-1")
    start, end = text.index("<DoseFastTidspunkt>"), text.index("</Dosering>")
    return (text[:start] + dosage_xml + text[end:]).encode("iso-8859-1")


AS_NEEDED = (
    "<DoseEtterBehov><Mengde V='1' U='stk'/><DoseDognMaks V='4' U='stk'/><DoseTidsromMaks V='2' U='stk'/>"
    "<Tidsrom V='6' U='Time'/><DoseIntervallMin V='3' U='Time'/></DoseEtterBehov>"
)


def test_an_as_needed_dosage_round_trips_with_its_limits(validator: XsdValidator) -> None:
    rx = parse_m1(_with_dosage(AS_NEEDED))
    [dose] = rx.medicine.prescribing.dosages[0].doses
    assert dose.as_needed is not None
    assert (dose.as_needed.max_per_day.value, dose.as_needed.period.unit) == (4.0, "Time")
    result = validator.validate(build_m1(rx))
    assert result.valid, result.errors
    bundle = prescription_to_bundle(rx)
    _valid_fhir(bundle)
    [first, *_] = _resource(bundle, "MedicationRequest")["dosageInstruction"]
    assert first["asNeededBoolean"] is True
    assert first["maxDosePerPeriod"]["numerator"] == {"value": 4.0, "unit": "stk"}
    assert first["maxDosePerPeriod"]["denominator"]["code"] == "d"
    back = prescription_from_bundle(bundle)
    assert _clinical(back) == _clinical(rx)
    assert parse_m1(to_bytes(build_m1(back))).medicine == rx.medicine


def test_a_dosing_rule_is_refused_not_dropped() -> None:
    rule = "<Doseringsregel><DoseresEtter V='1'/></Doseringsregel>"
    fixed = fixture_bytes("m1_merkevare.xml").decode("iso-8859-1")
    start = fixed.index("<DoseFastTidspunkt>")
    with pytest.raises(KithError) as caught:
        parse_m1((fixed[:start] + rule + fixed[start:]).encode("iso-8859-1"))
    assert caught.value.code == "T02"
