"""AppRec 1.0/1.1: receipts for received messages validate, swap the parties, and parse back."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from app.adapters.kith.apprec import (
    AppRecErrorItem,
    AppRecStatus,
    AppRecVersion,
    ReceivedMessage,
    build_apprec,
    parse_apprec,
    receipt_for,
    rejection_for,
)
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import OID_APPREC_ERROR
from app.adapters.kith.msghead import parse_msghead
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.kith.conftest import fixture_bytes, legacy_files

GEN = datetime(2024, 9, 2, 10, 16)


def _received() -> ReceivedMessage:
    return ReceivedMessage.from_referral(parse_henvisning(fixture_bytes("henvisning_v2_nytilstand.xml")))


@pytest.mark.parametrize("version", list(AppRecVersion))
@pytest.mark.parametrize("status", list(AppRecStatus))
def test_receipt_validates_and_roundtrips(
    version: AppRecVersion, status: AppRecStatus, validator: XsdValidator
) -> None:
    errors = (
        ()
        if status is AppRecStatus.OK
        else (AppRecErrorItem.of(AppRecError.PATIENT_UNKNOWN, "ukjent pasient"),)
    )
    apprec = receipt_for(_received(), status, errors, version=version, apprec_id="ar-1", gen_date=GEN)
    root = build_apprec(apprec)
    result = validator.validate(root)
    assert result.valid, result.errors
    parsed = parse_apprec(parse_xml(to_bytes(root)))
    # AppRec parties are a projection (CS identifier types, no telecoms): compare what it carries.
    assert (parsed.status, parsed.errors, parsed.id, parsed.gen_date) == (status, errors, "ar-1", GEN)
    assert (parsed.original_id, parsed.original_issue_date) == (
        apprec.original_id,
        apprec.original_issue_date,
    )
    assert parsed.sender.ident("HER") == apprec.sender.ident("HER") == "8123500"
    assert parse_apprec(parse_xml(to_bytes(build_apprec(parsed)))) == parsed


def test_parties_are_swapped_and_original_referenced() -> None:
    received = _received()
    apprec = receipt_for(received, AppRecStatus.OK, gen_date=GEN)
    assert apprec.sender == received.receiver
    assert apprec.receiver == received.sender
    assert apprec.original_id == received.msg_id
    assert apprec.original_issue_date == received.issue_date
    assert apprec.original_msg_type.code == "HENVISNING_NYTILSTAND"
    root = build_apprec(apprec)
    ns = {"a": "http://www.kith.no/xmlstds/apprec/2012-02-15"}
    assert root.findtext("a:Sender/a:HCP/a:Inst/a:Name", namespaces=ns) == "Helse Testfjord HF"
    assert root.findtext("a:Sender/a:HCP/a:Inst/a:Dept/a:Id", namespaces=ns) == "8123501"
    assert root.findtext("a:Receiver/a:HCP/a:Inst/a:HCPerson/a:Name", namespaces=ns) == "Solveig Testlege"
    assert root.find("a:Status", ns).get("V") == "1"


def test_rejection_from_kith_error(validator: XsdValidator) -> None:
    received = ReceivedMessage.from_msghead(
        parse_msghead(parse_xml(fixture_bytes("henvisning_v2_videre.xml")))
    )
    apprec = rejection_for(
        received, KithError(AppRecError.NOT_VALID, "mandatory element <ReqServ> is missing")
    )
    root = build_apprec(apprec)
    assert validator.validate(root).valid
    error = root.find("{http://www.kith.no/xmlstds/apprec/2012-02-15}Error")
    assert error is not None
    assert (error.get("V"), error.get("S"), error.get("DN")) == (
        "T02",
        OID_APPREC_ERROR,
        "XML validerer ikke",
    )
    assert error.get("OT") == "obligatorisk element <ReqServ> mangler"  # in Norwegian
    assert apprec.status is AppRecStatus.REJECTED


def test_rejected_without_error_is_refused() -> None:
    with pytest.raises(ValueError, match="needs at least one error"):
        build_apprec(receipt_for(_received(), AppRecStatus.REJECTED))


@pytest.mark.parametrize("path", legacy_files("samples/apprec/*.xml"))
def test_official_apprec_samples_parse(path: Path, validator: XsdValidator) -> None:
    apprec = parse_apprec(parse_xml(path.read_bytes()))  # wrapped in NAV's EI_fellesformat
    assert apprec.version is AppRecVersion.V1_0
    assert apprec.original_id == "b62016eb-6c2d-417a-8ecc-157b3c5ee2ca"
    assert apprec.sender.ident("ENH") == "889640782"
    assert apprec.sender.ident("HER") == "79768"
    if apprec.status is AppRecStatus.OK:
        assert apprec.errors == ()
    else:
        assert apprec.errors[0].code in {"E21", "X99"}
    rebuilt = build_apprec(apprec)
    assert validator.validate(rebuilt).valid
    assert parse_apprec(parse_xml(to_bytes(rebuilt))) == apprec


def test_parse_apprec_refuses_other_documents() -> None:
    with pytest.raises(KithError) as info:
        parse_apprec(parse_xml(b"<a/>"))
    assert info.value.code is AppRecError.UNSUPPORTED_FORMAT


def test_unknown_status_is_invalid() -> None:
    root = build_apprec(receipt_for(_received(), AppRecStatus.OK, gen_date=GEN))
    root.find("{http://www.kith.no/xmlstds/apprec/2012-02-15}Status").set("V", "7")
    with pytest.raises(KithError) as info:
        parse_apprec(root)
    assert info.value.code is AppRecError.NOT_VALID
