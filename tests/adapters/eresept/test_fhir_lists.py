"""M96 Reseptliste ↔ searchset Bundle: valid FHIR, XSD-valid M96 back, the same list and prescriptions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.adapters.eresept.fhir_lists import (
    prescription_list_from_searchset,
    prescription_list_to_searchset,
    rf_envelope,
)
from app.adapters.eresept.lists import build_m96, parse_m96
from app.adapters.eresept.messages import parse_m1
from app.adapters.eresept.model import ListedDispense, ListedPrescription, PrescriptionList
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Coded, Quantity
from app.adapters.kith.xmlsafe import to_bytes
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.kith.fhir_referrals import fhir_model
from tests.adapters.legacy import legacy_files

Json = dict[str, Any]


def _own_listing() -> PrescriptionList:
    """The M1 fixture listed as recalled, with one dispense so far."""
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    item = ListedPrescription(
        prescription_id=rx.envelope.msg_id,
        status=Coded(code="E", display="Ekspederbar"),
        dispenser_name="Fjordby apotek",
        recalled=True,
        recall_reason=Coded(code="1", system="2.16.578.1.12.4.1.1.7500", display="Feil legemiddel"),
        dispenses=(
            ListedDispense(
                name_form_strength="Selo-Zok Depottab 50 mg",
                packages_total=Decimal("1"),
                packages_last=Decimal("1"),
                last_dispensed=datetime.fromisoformat("2026-03-04T15:30:00+01:00"),
                item_number="123456",
                package_size=Quantity(value=100.0, unit="stk"),
            ),
        ),
    )
    return PrescriptionList(envelope=rx.envelope, items=(item,), prescriptions=(rx,))


def _round_trip(listing: PrescriptionList) -> tuple[Json, PrescriptionList]:
    bundle = prescription_list_to_searchset(listing)
    fhir_model("Bundle").model_validate(bundle)
    back = prescription_list_from_searchset(
        bundle, rf_envelope(listing.envelope.msg_id, listing.envelope.receiver)
    )
    return bundle, parse_m96(to_bytes(build_m96(back)))


def _same(a: PrescriptionList, b: PrescriptionList) -> None:
    assert a.items == b.items
    assert [p.medicine for p in a.prescriptions] == [p.medicine for p in b.prescriptions]
    assert [p.envelope.patient for p in a.prescriptions] == [p.envelope.patient for p in b.prescriptions]
    assert [(p.issued, p.expires) for p in a.prescriptions] == [
        (p.issued, p.expires) for p in b.prescriptions
    ]


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M96 *.xml"))
def test_m96_sample_round_trips_through_a_searchset(path: Path, validator: XsdValidator) -> None:
    listing = parse_m96(path.read_bytes())
    bundle, again = _round_trip(listing)
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert [e["resource"]["resourceType"] for e in matches] == ["MedicationRequest"]
    assert bundle["total"] == 1
    assert validator.validate(build_m96(again)).valid
    _same(again, listing)


def test_own_listing_round_trips_and_a_recalled_item_is_cancelled() -> None:
    listing = _own_listing()
    bundle, again = _round_trip(listing)
    request = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match")
    assert request["status"] == "cancelled"
    assert request["statusReason"]["coding"][0]["code"] == "1"
    assert all("request" not in e for e in bundle["entry"])  # a searchset carries no requests (bdl-3)
    _same(again, listing)
    assert again.prescriptions[0].envelope.msg_id == listing.items[0].prescription_id


def test_a_listed_prescription_without_its_m1_is_refused() -> None:
    listing = _own_listing()
    bare = PrescriptionList(envelope=listing.envelope, items=listing.items, prescriptions=())
    with pytest.raises(KithError):
        prescription_list_to_searchset(bare)
