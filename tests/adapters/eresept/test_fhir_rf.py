"""What RF sends (M92, M94, M912) and the consent registration (M241) ↔ FHIR: valid R4 (fhir.resources),
XSD-valid XML back, the same content after parsing it again."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from lxml import etree

from app.adapters.eresept.consent import build_m241, parse_m241
from app.adapters.eresept.fhir_consent import consent_from_resource, consent_resource
from app.adapters.eresept.fhir_dispenser import (
    EXT_MULTIDOSE_USER,
    dispenser_list_from_searchset,
    dispenser_list_to_searchset,
    download_from_searchset,
    download_to_searchset,
)
from app.adapters.eresept.fhir_lists import rf_envelope
from app.adapters.eresept.fhir_pll import medications_in_use_from_bundle, medications_in_use_to_bundle
from app.adapters.eresept.lists import build_m92, build_m94, parse_m92, parse_m94
from app.adapters.eresept.messages import parse_m1
from app.adapters.eresept.model import (
    CoPayment,
    DispenserList,
    Download,
    Envelope,
    MedicationsInUse,
    MultidosePharmacy,
    PrescriptionInfo,
)
from app.adapters.eresept.pll import NS_M912_2014, NS_M912_2018, build_m912, parse_m912
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Address, Coded, Ident, Quantity, Telecom
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.resources.medication_list.codes import FREE_TEXT_EXTENSION, LIST_CODE, KeyKind
from app.resources.medication_list.diff import medicine
from app.resources.medication_list.multidose import responsible
from app.resources.no_basis.identifiers import HPR_SYSTEM
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.kith.fhir_referrals import fhir_model
from tests.adapters.legacy import legacy_files

Json = dict[str, Any]


class _Message(Protocol):
    @property
    def envelope(self) -> Envelope: ...


M = TypeVar("M", bound=_Message)
M92 = "samples/eresept/*/M92 *.xml"
M912 = "samples/eresept/*/M912 *.xml"


def _valid_fhir(bundle: Json) -> None:
    fhir_model("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        fhir_model(entry["resource"]["resourceType"]).model_validate(entry["resource"])


def _resources(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _through_fhir(
    message: M,
    to_fhir: Callable[[M], Json],
    from_fhir: Callable[[Json, Envelope], M],
    build: Callable[[M], etree._Element],
    parse: Callable[[bytes], M],
    validator: XsdValidator,
) -> tuple[Json, M]:
    """message → FHIR (valid) → message (RF's envelope to the same receiver) → XML (XSD-valid) → parsed."""
    bundle = to_fhir(message)
    _valid_fhir(bundle)
    back = from_fhir(bundle, rf_envelope(message.envelope.msg_id, message.envelope.receiver))
    xml = build(back)
    result = validator.validate(xml)
    assert result.valid, result.errors
    return bundle, parse(to_bytes(xml))


# --- M92 ----------------------------------------------------------------------------------------------------


def _m92_round_trip(listing: DispenserList, validator: XsdValidator) -> tuple[Json, DispenserList]:
    return _through_fhir(
        listing, dispenser_list_to_searchset, dispenser_list_from_searchset, build_m92, parse_m92, validator
    )


@pytest.mark.parametrize("path", legacy_files(M92))
def test_m92_sample_round_trips_through_a_searchset(path: Path, validator: XsdValidator) -> None:
    listing = parse_m92(path.read_bytes())
    bundle, again = _m92_round_trip(listing, validator)
    assert bundle["total"] == 2
    requests = _resources(bundle, "MedicationRequest")
    assert [r["identifier"][0]["value"] for r in requests] == [i.prescription_id for i in listing.items]
    assert requests[1]["dispenseRequest"]["numberOfRepeatsAllowed"] == 3
    assert requests[0]["requester"]["identifier"] == {"system": HPR_SYSTEM, "value": "431002737"}
    (patient,) = _resources(bundle, "Patient")  # both prescriptions are OTTAR KNUTSEN's
    assert {r["subject"]["reference"] for r in requests} == {
        e["fullUrl"] for e in bundle["entry"] if e["resource"] is patient
    }
    assert [e["valueString"] for e in patient["extension"] if e["url"] == EXT_MULTIDOSE_USER] == [
        "21014605158"
    ]
    assert again.items == listing.items
    assert again.multidose_users == listing.multidose_users


@pytest.mark.parametrize("path", legacy_files(M92))
def test_m92_summary_without_product_and_a_multidose_user_of_its_own(
    path: Path, validator: XsdValidator
) -> None:
    """A mixture (no varenummer, no name) maps with an absent medication; a multidose user no listed
    prescription names gets a Patient of its own."""
    listing = parse_m92(path.read_bytes())
    mixture = dataclasses.replace(
        listing.items[0],
        prescription_id="mixture-1",
        item_number=None,
        name_form_strength=None,
        mixture_name="Salve etter resept",
        status=Coded(code="U", display="Utlevert"),
        package=None,
        amount=Quantity(value=50.0, unit="g"),
        last_dispensed=date(2019, 7, 1),
        recall_note="Feil styrke",
    )
    other = dataclasses.replace(listing.multidose_users[0], fnr="13116900216", doctor=None)
    changed = dataclasses.replace(
        listing, items=(*listing.items, mixture), multidose_users=(*listing.multidose_users, other)
    )
    bundle, again = _m92_round_trip(changed, validator)
    request = _resources(bundle, "MedicationRequest")[-1]
    assert request["status"] == "unknown"  # only E (ekspederbar) is confirmed as active
    assert "coding" not in request["medicationCodeableConcept"]
    assert len(_resources(bundle, "Patient")) == 2
    assert again.items == changed.items
    assert again.multidose_users == changed.multidose_users


# --- M94 ----------------------------------------------------------------------------------------------------


def _m94_round_trip(download: Download, validator: XsdValidator) -> tuple[Json, Download]:
    return _through_fhir(
        download, download_to_searchset, download_from_searchset, build_m94, parse_m94, validator
    )


def _same_download(a: Download, b: Download) -> None:
    assert a.prescription is not None
    assert b.prescription is not None
    assert a.prescription.medicine == b.prescription.medicine
    assert a.prescription.envelope.patient == b.prescription.envelope.patient
    assert a.prescription.envelope.msg_id == b.prescription.envelope.msg_id
    assert dataclasses.replace(a, envelope=b.envelope, prescription=b.prescription) == b


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M94 *.xml"))
def test_m94_sample_round_trips_through_a_searchset(path: Path, validator: XsdValidator) -> None:
    download = parse_m94(path.read_bytes())
    assert download.status.code == "E"
    bundle, again = _m94_round_trip(download, validator)
    assert bundle["total"] == 1
    (match,) = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert match["resource"]["identifier"][0]["value"] == "c2883dc2-8eef-4b8e-a80f-167f858425f7"
    _same_download(download, again)


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M94 *.xml"))
def test_m94_with_application_and_co_payments(path: Path, validator: XsdValidator) -> None:
    download = dataclasses.replace(
        parse_m94(path.read_bytes()),
        application_sent=date(2019, 6, 1),
        application_answered=date(2019, 6, 20),
        exemption_granted=True,
        application_status=Coded(code="I", display="Innvilget"),
        co_payments=tuple(
            CoPayment(period_start=date(2019, month, 1), paid=Quantity(value=100.0 * month, unit="NOK"))
            for month in (1, 4, 7, 10)
        ),
    )
    _, again = _m94_round_trip(download, validator)
    _same_download(download, again)


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M94 *.xml"))
def test_m94_without_its_prescription_is_refused(path: Path) -> None:
    download = dataclasses.replace(parse_m94(path.read_bytes()), prescription=None)
    with pytest.raises(KithError):
        download_to_searchset(download)


# --- M912 ---------------------------------------------------------------------------------------------------


def _m912_round_trip(pll: MedicationsInUse, validator: XsdValidator) -> tuple[Json, MedicationsInUse]:
    def from_fhir(bundle: Json, envelope: Envelope) -> MedicationsInUse:
        return medications_in_use_from_bundle(bundle, envelope, pll.version)

    bundle, again = _through_fhir(
        pll, medications_in_use_to_bundle, from_fhir, build_m912, parse_m912, validator
    )
    assert dataclasses.replace(again, envelope=pll.envelope) == pll
    return bundle, again


@pytest.mark.parametrize("path", legacy_files(M912))
def test_m912_sample_is_the_medication_list_with_its_multidose_doctor(
    path: Path, validator: XsdValidator
) -> None:
    pll = parse_m912(path.read_bytes())
    assert pll.version == NS_M912_2014
    bundle, _ = _m912_round_trip(pll, validator)
    (medication_list,) = _resources(bundle, "List")
    assert (medication_list["status"], medication_list["mode"]) == ("current", "working")
    assert medication_list["code"]["coding"][0]["code"] == LIST_CODE
    owner = responsible(medication_list)
    assert owner is not None
    assert owner.practitioner == {
        "identifier": {"system": HPR_SYSTEM, "value": "431002737"},
        "display": "Anja Fos  Eidsvik",
    }
    assert owner.organization["identifier"]["value"] == "8095068"


def _full_pll(m912: Path, m92: Path, version: str) -> MedicationsInUse:
    """The M912 sample with the M92 sample's prescriptions (one made free text), a multidose pharmacy,
    a list in use and, in 2018-07-01, another fødselsnummer."""
    pll = parse_m912(m912.read_bytes())
    items = parse_m92(m92.read_bytes()).items
    free_text: PrescriptionInfo = dataclasses.replace(items[1], prescription_id="free-1", item_number=None)
    pharmacy = MultidosePharmacy(
        name="Apotek 1 Ski Storsenter",
        licence=Ident(id="1234", type=Coded(code="KNR", display="Konsesjonsnummer")),
        address=Address(street="Jernbaneveien 2", postal_code="1400", city="SKI"),
        active_until=date(2030, 1, 1),
        telecom=Telecom(address="tel:23204100", type=Coded(code="WP", display="Arbeid")),
    )
    return dataclasses.replace(
        pll,
        version=version,
        ref_msg_id="133a6095-4c5b-40df-b065-16466e40f0f2",
        other_fnrs=("13116900216",) if version == NS_M912_2018 else (),
        patient=dataclasses.replace(pll.patient, pharmacy=pharmacy),
        prescriptions=(*items, free_text),
        lists=(b"<LegemidlerIBruk/>",),
    )


@pytest.mark.parametrize("version", [NS_M912_2014, NS_M912_2018])
@pytest.mark.parametrize("m92", legacy_files(M92))
@pytest.mark.parametrize("m912", legacy_files(M912))
def test_m912_with_prescriptions_round_trips_in_both_versions(
    m912: Path, m92: Path, version: str, validator: XsdValidator
) -> None:
    pll = _full_pll(m912, m92, version)
    bundle, again = _m912_round_trip(pll, validator)
    assert again.version == version
    statements = _resources(bundle, "MedicationStatement")
    assert len(statements) == 3
    # the medication list's reconciliation reads them as its own statements: keyed by varenummer
    assert medicine(statements[0]).codes[KeyKind.VARENR] == "429076"
    assert statements[0]["basedOn"][0]["identifier"]["value"] == pll.prescriptions[0].prescription_id
    assert FREE_TEXT_EXTENSION in [e["url"] for e in statements[2]["extension"]]
    assert statements[1]["dosage"][0]["patientInstruction"] == "ALLERGIMEDISIN"


@pytest.mark.parametrize("m92", legacy_files(M92))
@pytest.mark.parametrize("m912", legacy_files(M912))
def test_m912_other_fnr_needs_2018(m912: Path, m92: Path) -> None:
    pll = dataclasses.replace(_full_pll(m912, m92, NS_M912_2018), version=NS_M912_2014)
    with pytest.raises(KithError) as caught:
        build_m912(pll)
    assert caught.value.code == "T02"


# --- M241 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M241 *.xml"))
def test_m241_sample_is_a_consent(path: Path, validator: XsdValidator) -> None:
    consent = parse_m241(path.read_bytes())
    resource = consent_resource(consent)
    fhir_model("Consent").model_validate(resource)
    withdrawn = "avmelding" in path.name
    assert resource["provision"]["type"] == ("deny" if withdrawn else "permit")
    assert resource["provision"]["period"]["end"] == "2056-01-21"
    back = consent_from_resource(resource, consent.envelope)
    xml = build_m241(back)
    assert validator.validate(xml).valid
    assert parse_m241(to_bytes(xml)) == consent


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M241 *.xml"))
def test_m241_without_a_patient_is_refused(path: Path) -> None:
    consent = parse_m241(path.read_bytes())
    with pytest.raises(KithError):
        consent_resource(
            dataclasses.replace(consent, envelope=dataclasses.replace(consent.envelope, patient=None))
        )


def test_decimal_quantities_survive() -> None:
    """Antall is a decimal (split packages, 2.5): it goes through FHIR's decimal and back unchanged (no
    shared data needed)."""
    info = PrescriptionInfo(
        prescription_id="x",
        issued=date(2026, 1, 1),
        given_name="Kari",
        family_name="Nordmann",
        prescriber_id="9144900",
        prescriber_name="Lege",
        changed_by_pharmacist=Coded(code="2"),
        status=Coded(code="E"),
        guardian_reservation=False,
        quantity=Decimal("2.5"),
    )
    listing = DispenserList(envelope=parse_m1(fixture_bytes("m1_merkevare.xml")).envelope, items=(info,))
    bundle = dispenser_list_to_searchset(listing)
    back = dispenser_list_from_searchset(bundle, rf_envelope("m", listing.envelope.receiver))
    assert back.items == (info,)
