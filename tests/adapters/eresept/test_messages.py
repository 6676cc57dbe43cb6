"""e-resept XML: parse, build, XSD-validate, parse again (every official sample and own fixtures)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from app.adapters.eresept.consent import build_m241, build_m242, parse_m241, parse_m242
from app.adapters.eresept.lists import build_m92, build_m94, build_m96, parse_m92, parse_m94, parse_m96
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
from app.adapters.eresept.model import ListedPrescription, PrescriptionList, ProductKind
from app.adapters.eresept.pll import build_m912, parse_m912
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import Coded
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.legacy import legacy_files

Parse = Callable[[bytes], Any]
Build = Callable[[Any], etree._Element]
KINDS: dict[str, tuple[Parse, Build]] = {
    "M1": (parse_m1, build_m1),
    "M5": (parse_m5, build_m5),
    "M7": (parse_m7, build_m7),
    "M10": (parse_m10, build_m10),
    "M96": (parse_m96, build_m96),
    "M92": (parse_m92, build_m92),
    "M94": (parse_m94, build_m94),
    "M912": (parse_m912, build_m912),
    "M241": (parse_m241, build_m241),
    "M242": (parse_m242, build_m242),
}


def _samples() -> list[object]:
    """Every official e-resept sample: each kind in the folder has a reader and writer here."""
    return legacy_files("samples/eresept/*/M*.xml")


def _roundtrip(data: bytes, kind: str, validator: XsdValidator) -> None:
    parse, build = KINDS[kind]
    assert validator.validate(parse_xml(data)).valid  # the input itself is valid
    message = parse(data)
    rebuilt = build(message)
    result = validator.validate(rebuilt)
    assert result.valid, result.errors
    assert parse(to_bytes(rebuilt)) == message


@pytest.mark.parametrize("path", _samples())
def test_official_samples_round_trip_and_validate(path: Path, validator: XsdValidator) -> None:
    _roundtrip(path.read_bytes(), path.name.split()[0], validator)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("m1_merkevare.xml", "M1"), ("m5_tilbakekalling.xml", "M5"), ("m10_utlevering.xml", "M10")],
)
def test_own_fixtures_round_trip_and_validate(name: str, kind: str, validator: XsdValidator) -> None:
    _roundtrip(fixture_bytes(name), kind, validator)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("m1_merkevare.xml", "M1"), ("m5_tilbakekalling.xml", "M5"), ("m10_utlevering.xml", "M10")],
)
def test_own_fixtures_round_trip_without_the_xsds(name: str, kind: str) -> None:
    """The pure part of the round trip, which runs without the shared reference data."""
    parse, build = KINDS[kind]
    message = parse(fixture_bytes(name))
    assert parse(to_bytes(build(message))) == message


def test_m5_and_m10_fixture_content() -> None:
    recall = parse_m5(fixture_bytes("m5_tilbakekalling.xml"))
    assert recall.prescription_id == "6f1c2a90-3b1e-4a57-9d55-2f0c8e7a1b23"
    assert recall.reason.code == "1"
    assert recall.note == "Byttes til annen styrke"
    assert recall.new_prescription_id == "5a7e0c1d-2b3f-4c5d-8e9f-0a1b2c3d4e5f"
    dispense = parse_m10(fixture_bytes("m10_utlevering.xml"))
    assert dispense.dispenser.her_id == "9990002"
    assert dispense.dispensed_on == date(2026, 3, 4)
    assert dispense.medicine is not None
    assert dispense.medicine.reiterations == 2
    assert dispense.customer_reserved_substitution is True


def test_m1_fixture_content() -> None:
    """ISO-8859-1 fixture: the declared encoding is honoured, every modelled field is read."""
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    assert rx.envelope.patient is not None
    assert rx.envelope.patient.name.given == "Øyvind"
    assert rx.envelope.patient.idents[0].id == "03846130011"
    prescriber = rx.envelope.sender.professional
    assert prescriber is not None
    assert prescriber.idents[0].id == "9144900"
    assert (rx.issued, rx.expires, rx.earliest_dispense) == (
        date(2026, 3, 2),
        date(2027, 3, 1),
        date(2026, 3, 3),
    )
    assert rx.free_card is True
    assert rx.reference == "Fjordby-4711"
    med = rx.medicine
    assert (med.quantity, med.reiterations, med.note) == (Decimal(2), 3, "Tas med mat")
    product = med.prescribing.medicine
    assert product.kind == ProductKind.BRAND
    assert product.brand_name == "Selo-Zok"
    assert product.atc is not None
    assert product.atc.code == "C07AB02"
    dosage = med.prescribing.dosages[0]
    assert (dosage.start, dosage.end) == (date(2026, 3, 2), date(2026, 9, 1))
    assert dosage.doses[0].clock_time == time(8, 0)
    assert dosage.doses[0].exact
    assert dosage.doses[1].time_of_day is not None
    assert dosage.doses[1].time_of_day.display == "Kveld"


def test_build_writes_utf8_whatever_the_input_encoding() -> None:
    out = to_bytes(build_m1(parse_m1(fixture_bytes("m1_merkevare.xml"))))
    assert out.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Øyvind".encode() in out


def _m1_with(replace: str, by: str) -> bytes:
    text = fixture_bytes("m1_merkevare.xml").decode("iso-8859-1").replace(replace, by, 1)
    return text.encode("iso-8859-1")


@pytest.mark.parametrize(
    ("replace", "by", "code"),
    [
        ("<Reiterasjon>3</Reiterasjon>", "<Reiterasjon>3.5</Reiterasjon>", "T02"),
        ("<Utloper>2027-03-01</Utloper>", "<Utloper>snart</Utloper>", "T02"),
        ("<Forskrivningsdato>2026-03-02</Forskrivningsdato>", "", "T02"),
        ("<LegemiddelMerkevare>", "<Legemiddelblanding/><LegemiddelMerkevare>", "T02"),
        ("<Resept ", "<Tilbakekalling ", "T01"),  # not well-formed any more
        ('xmlns="http://www.kith.no/xmlstds/eresept/m1/2013-10-08"', 'xmlns="urn:other"', "T10"),
        ("<MsgHead ", '<!DOCTYPE x [<!ENTITY a "b">]><MsgHead ', "T99"),
    ],
)
def test_m1_refusals(replace: str, by: str, code: str) -> None:
    with pytest.raises(KithError) as caught:
        parse_m1(_m1_with(replace, by))
    assert caught.value.code == code


def test_another_message_type_is_t10() -> None:
    with pytest.raises(KithError) as caught:
        parse_m5(fixture_bytes("m1_merkevare.xml"))
    assert caught.value.code == "T10"


def test_size_limit_holds() -> None:
    with pytest.raises(KithError) as caught:
        parse_m1(fixture_bytes("m1_merkevare.xml") + b" " * (5 * 1024 * 1024))
    assert caught.value.code == "T99"


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M96 *.xml"))
def test_m96_reads_the_embedded_m1_with_its_reimbursement(path: Path) -> None:
    """The listed prescription's M1 is base64 in a Document of its own; it carries RefHjemmel/RefKode."""
    listing = parse_m96(path.read_bytes())
    assert [i.prescription_id for i in listing.items] == [p.envelope.msg_id for p in listing.prescriptions]
    medicine = listing.prescriptions[0].medicine
    assert medicine.reimbursement_code is not None
    assert medicine.reimbursement_code.code == "R97"
    assert medicine.reimbursement_basis is not None
    assert medicine.reimbursement_basis.system == "2.16.578.1.12.4.1.1.7427"


def test_m96_embedded_message_that_is_not_base64_is_t02() -> None:
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    listing = PrescriptionList(
        envelope=rx.envelope,
        items=(ListedPrescription(prescription_id=rx.envelope.msg_id, status=Coded(code="E")),),
        prescriptions=(rx,),
    )
    data = to_bytes(build_m96(listing))
    assert parse_m96(data) == listing
    content = data.index(b'base64container">') + len(b'base64container">')
    broken = data[: content + 8] + b"!!" + data[content + 10 :]
    with pytest.raises(KithError) as caught:
        parse_m96(broken)
    assert caught.value.code == "T02"


def test_an_embedded_m1_goes_through_the_hardened_parser() -> None:
    """A DOCTYPE inside a base64-embedded M1 of an M96 is refused like one in the message itself."""
    rx = parse_m1(fixture_bytes("m1_merkevare.xml"))
    item = ListedPrescription(prescription_id=rx.envelope.msg_id, status=Coded(code="E"))
    data = to_bytes(build_m96(PrescriptionList(envelope=rx.envelope, items=(item,), prescriptions=(rx,))))
    root = etree.fromstring(data)
    container = next(
        el for el in root.iter() if isinstance(el.tag, str) and el.tag.endswith("Base64Container")
    )
    embedded = base64.b64decode(container.text or "").replace(
        b"<MsgHead", b'<!DOCTYPE m [<!ENTITY a "b">]><MsgHead', 1
    )
    container.text = base64.b64encode(embedded).decode("ascii")
    with pytest.raises(KithError) as caught:
        parse_m96(to_bytes(root))
    assert caught.value.code == "T99"


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M912 *.xml"))
def test_m912_refusals(path: Path) -> None:
    """An unknown M912 version is T10; a VarerIBrukB64 that is not base64 is T02."""
    text = path.read_bytes()
    with pytest.raises(KithError) as caught:
        parse_m912(text.replace(b"eresept/m912/2014-01-21", b"eresept/m912/2099-01-01"))
    assert caught.value.code == "T10"
    broken = text.replace(b"</Multidosepasient>", b"<VarerIBrukB64>!!</VarerIBrukB64></Multidosepasient>")
    with pytest.raises(KithError) as caught:
        parse_m912(broken)
    assert caught.value.code == "T02"


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M94 *.xml"))
def test_m94_carries_one_prescription(path: Path) -> None:
    download = parse_m94(path.read_bytes())
    assert download.prescription is not None
    assert download.prescription.envelope.msg_id == "c2883dc2-8eef-4b8e-a80f-167f858425f7"
    root = build_m94(download)
    documents = [el for el in root if isinstance(el.tag, str) and el.tag.endswith("}Document")]
    root.append(etree.fromstring(etree.tostring(documents[-1])))  # the M1 twice
    with pytest.raises(KithError) as caught:
        parse_m94(to_bytes(root))
    assert caught.value.code == "T02"


@pytest.mark.parametrize("path", legacy_files("samples/eresept/*/M241 *.xml"))
def test_m241_content(path: Path) -> None:
    consent = parse_m241(path.read_bytes())
    assert consent.kind.code == "1"
    assert consent.value is not None
    assert consent.value.code == ("2" if "avmelding" in path.name else "1")
    assert consent.envelope.patient is not None
