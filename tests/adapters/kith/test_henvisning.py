"""Henvisning 1.0/1.1/2.0: official samples and own fixtures parse, round-trip and validate."""

from __future__ import annotations

import base64
import dataclasses
from datetime import date, datetime
from pathlib import Path

import pytest

from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.henvisning import parse_henvisning, serialize_henvisning
from app.adapters.kith.model import (
    OID_ICD10,
    OID_ICPC2,
    HenvisningVersion,
    MessageKind,
    ProfessionalRole,
    Referral,
)
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from app.resources.no_basis.identifiers import has_valid_orgnr, synthetic_fnr
from tests.adapters.kith.conftest import FIXTURES, fixture_bytes, legacy_files


def _roundtrip(ref: Referral) -> tuple[bytes, Referral]:
    target = HenvisningVersion.V2_0 if ref.version is HenvisningVersion.V2_0 else HenvisningVersion.V1_1
    out = serialize_henvisning(ref, target)
    return out, parse_henvisning(out)


def _clinical(ref: Referral) -> Referral:
    """A referral without what 1.0 → 1.1 legitimately changes (version, type code, placeholder ReqServ)."""
    return dataclasses.replace(
        ref, version=HenvisningVersion.V1_1, message_type=ref.message_type.__class__(), requested_service=None
    )


def _assert_valid(validator: XsdValidator, data: bytes) -> None:
    """1.1 too: its missing poKomponent v1.5 import has a stand-in, so nothing is skipped."""
    result = validator.validate(parse_xml(data))
    assert not result.skipped, result.reason
    assert result.valid, result.errors


@pytest.mark.parametrize("path", legacy_files("samples/Henvisning/*/*.xml"))
def test_official_sample_parses_roundtrips_and_validates(path: Path, validator: XsdValidator) -> None:
    data = path.read_bytes()
    ref = parse_henvisning(data, validator=validator)
    assert ref.patient.idents
    assert ref.msg_id
    assert ref.document_id
    out, again = _roundtrip(ref)
    if ref.version is HenvisningVersion.V1_0:
        assert again.version is HenvisningVersion.V1_1
        assert _clinical(again) == _clinical(ref)
        if ref.requested_service is not None:
            assert again.requested_service == ref.requested_service
    else:
        assert again == ref
    _assert_valid(validator, out)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("henvisning_*.xml")))
def test_own_fixture_validates_and_roundtrips(name: str, validator: XsdValidator) -> None:
    data = fixture_bytes(name)
    _assert_valid(validator, data)
    ref = parse_henvisning(data, validator=validator)
    out, again = _roundtrip(ref)
    assert again == ref
    _assert_valid(validator, out)


def test_fixtures_use_synthetic_identifiers() -> None:
    assert parse_henvisning(fixture_bytes("henvisning_v2_nytilstand.xml")).patient.ident(
        "FNR"
    ) == synthetic_fnr(14, 3, 1957, 123)
    assert parse_henvisning(fixture_bytes("henvisning_v1_1_ny.xml")).patient.ident("FNR") == synthetic_fnr(
        2, 11, 1984, 456
    )
    sender = parse_henvisning(fixture_bytes("henvisning_v2_nytilstand.xml")).sender
    assert has_valid_orgnr(sender.ident("ENH") or "")


def test_v2_new_condition_content() -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v2_nytilstand.xml"))
    assert ref.version is HenvisningVersion.V2_0
    assert ref.kind is MessageKind.NEW
    assert ref.message_type.code == "HENVISNING_NYTILSTAND"
    assert ref.generated == datetime(2024, 9, 2, 10, 15, 30)
    p = ref.patient
    assert (p.name.family, p.name.given, p.birth_date) == ("Øvrebø", "Åse Marit", date(1957, 3, 14))
    assert p.sex is not None
    assert p.sex.code == "2"
    assert p.address is not None
    assert p.address.county is not None
    assert p.address.county.code == "4640"
    assert p.telecoms[0].address == "tel:+4740000001"
    assert p.marital_status is not None
    assert p.lives_alone is False
    assert [(d.concept.system, d.concept.code) for d in ref.diagnoses] == [
        (OID_ICD10, "M069"),
        (OID_ICPC2, "L88"),
    ]
    assert [d.code_system_name for d in ref.diagnoses] == ["ICD-10", "ICPC-2"]
    assert [i.type.code for i in ref.clinical_items] == ["ANAM", "FUNN", "CAVE", "MEDB"]
    med = ref.clinical_items[3].medication
    assert med is not None
    assert med.drug.code == "M01AE01"
    assert med.unit_dose is not None
    assert med.unit_dose.value == 400
    assert [r.heading.code for r in ref.reasons if r.heading] == ["PROB", "UTRED"]
    assert ref.comments[0].text == "Pasienten ønsker time på formiddagen."
    assert ref.requested_service is not None
    assert ref.requested_service.priority is not None
    assert ref.content_type is not None
    assert ref.content_type.code == "10"
    assert ref.interpreter_needs[0].hearing_impaired is True
    assert ref.related_persons[0].next_of_kin is True
    # referrer: HPR from AnsvarForRapport(HHE), HER from the MsgHead sender's person
    referrer = ref.referrer
    assert referrer is not None
    assert referrer.ident("HPR") == "9900123"
    assert referrer.ident("HER") == "8123402"
    assert ref.sender.ident("HER") == "8123401"
    assert ref.sender.ident("ENH") == "923456783"
    assert ref.receiver.sub_organisation is not None
    assert ref.receiver.sub_organisation.ident("HER") == "8123501"
    (pdf,) = ref.attachments
    assert pdf.mime_type == "application/pdf"
    assert pdf.msg_type.code == "A"
    assert base64.b64decode(pdf.content_base64 or "").startswith(b"%PDF-1.4")
    assert ref.forwarding is None
    assert ref.original is None


def test_v2_forwarding_rights_assessment() -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v2_videre.xml"))
    assert ref.message_type.code == "HENVISNING_VIDERE"
    assert ref.original is not None
    assert ref.original.parent_id == "6f1c2a8e-5b1d-4c3e-9a77-0d2f3b4c5d6e"
    fwd = ref.forwarding
    assert fwd is not None
    assert fwd.assessment is not None
    assert fwd.assessment.right_to_care is True
    assert fwd.assessment.pathway_id == "FORLOP-2024-000123"
    assert fwd.date_of("FRIST") == date(2024, 11, 15)
    assert fwd.date_of("VURDERT") == date(2024, 9, 9)
    assessor = next(
        p for p in ref.professionals if p.role is ProfessionalRole.REPORT_RESPONSIBLE and p.relation is None
    )
    assert assessor.professional.ident("HPR") == "9900456"
    assert assessor.approved_date == date(2024, 9, 9)


def test_v1_1_iso_8859_1_content() -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v1_1_ny.xml"))
    assert ref.version is HenvisningVersion.V1_1
    assert (ref.patient.name.family, ref.patient.name.given) == ("Ærø", "Jørgen")
    assert ref.reasons[0].text is not None
    assert ref.reasons[0].text.startswith("Økende dyspné")
    assert ref.patient.address is not None
    assert ref.patient.address.county is not None
    assert ref.sender.ident("ENH") == "923456783"
    assert ref.receiver.sub_organisation is not None
    referrer = ref.referrer
    assert referrer is not None
    assert referrer.ident("HPR") == "9900789"
    assert referrer.ident("HER") == "8123701"
    assert ref.related_persons[0].name.given == "Ingrid"
    assert ref.processing_status is not None
    assert ref.processing_status.code == "TEST"


@pytest.mark.parametrize("path", legacy_files("samples/Henvisning/Henvisning_v1-0/*.xml"))
def test_v1_0_as_v2_keeps_clinical_content(path: Path) -> None:
    ref = parse_henvisning(path.read_bytes())
    again = parse_henvisning(serialize_henvisning(ref, HenvisningVersion.V2_0))
    assert again.version is HenvisningVersion.V2_0
    for field in ("patient", "diagnoses", "reasons", "kind", "document_id", "request_comment"):
        if field == "patient":
            assert again.patient.idents == ref.patient.idents
            assert again.patient.name == ref.patient.name
        else:
            assert getattr(again, field) == getattr(ref, field)
    assert [i.description for i in again.clinical_items] == [i.description for i in ref.clinical_items]


def test_v2_change_and_cancel_reference_the_original() -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v2_videre.xml"))
    cancel = dataclasses.replace(ref, kind=MessageKind.CANCEL, request_comment="Feilsendt")
    again = parse_henvisning(serialize_henvisning(cancel, HenvisningVersion.V2_0))
    assert again.kind is MessageKind.CANCEL
    assert again.original == ref.original


def test_serialize_v1_0_is_refused() -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v1_1_ny.xml"))
    with pytest.raises(ValueError, match=r"1\.1 or 2\.0"):
        serialize_henvisning(ref, HenvisningVersion.V1_0)


# --- errors -------------------------------------------------------------------------------------------------

FNR = synthetic_fnr(14, 3, 1957, 123)


def _error(data: bytes, validator: XsdValidator | None = None) -> KithError:
    with pytest.raises(KithError) as info:
        parse_henvisning(data, validator=validator)
    assert FNR not in info.value.message
    assert "Øvrebø" not in info.value.message
    return info.value


def _v2(old: str, new: str) -> bytes:
    data = fixture_bytes("henvisning_v2_nytilstand.xml").decode()
    assert old in data
    return data.replace(old, new, 1).encode()


def test_unknown_patient_identifier_type() -> None:
    err = _error(_v2('<TypeId V="FNR" DN="Fødselsnummer"', '<TypeId V="XYZ" DN="Ukjent"'))
    assert err.code is AppRecError.PATIENT_INFO_INSUFFICIENT


def test_unknown_identifier_type_v1() -> None:
    data = fixture_bytes("henvisning_v1_1_ny.xml").replace(b'<TypeOffId V="FNR"', b'<TypeOffId V="QQQ"')
    assert _error(data).code is AppRecError.PATIENT_INFO_INSUFFICIENT


def test_missing_patient_identifier() -> None:
    start = '<Ident>\n\t\t\t\t<Id>14835712347</Id>\n\t\t\t\t<TypeId V="FNR" DN="Fødselsnummer" S="2.16.578.1.12.4.1.1.8116"/>\n\t\t\t</Ident>'
    assert _error(_v2(start, "")).code is AppRecError.PATIENT_FNR_MISSING


def test_missing_patient_name() -> None:
    data = _v2("<FamilyName>Øvrebø</FamilyName>\n\t\t\t<GivenName>Åse Marit</GivenName>", "")
    assert _error(data).code is AppRecError.PATIENT_NAME_MISSING


def test_missing_mandatory_part() -> None:
    data = _v2("<DocumentId>0b7e8f10-2a3b-4c5d-8e9f-a0b1c2d3e4f5</DocumentId>", "")
    assert _error(data).code is AppRecError.NOT_VALID


def test_unknown_servtype() -> None:
    assert _error(
        _v2('<ServType V="N" DN="Ny"/>\n\t\t\t\t\t<IssueDate>', '<ServType V="Q"/><IssueDate>')
    ).code is (AppRecError.NOT_VALID)


def test_invalid_date() -> None:
    assert _error(_v2("<GenDate>2024-09-02T10:15:30</GenDate>", "<GenDate>2024-13-02</GenDate>")).code is (
        AppRecError.NOT_VALID
    )


def test_wrong_business_namespace() -> None:
    data = _v2(
        '<Henvisning xmlns="http://ehelse.no/xmlstds/henvisning/2017-11-30"', '<Henvisning xmlns="urn:x"'
    )
    assert _error(data).code is AppRecError.UNSUPPORTED_FORMAT


def test_wrong_msghead_namespace() -> None:
    data = _v2(
        '<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">', '<MsgHead xmlns="urn:other">'
    )
    assert _error(data).code is AppRecError.UNSUPPORTED_FORMAT


def test_wrong_message_type() -> None:
    data = _v2('<Type V="HENVISNING_NYTILSTAND"', '<Type V="DIALOG_NOTAT"')
    assert _error(data).code is AppRecError.UNSUPPORTED_FORMAT


def test_unknown_v1_namespace() -> None:
    data = fixture_bytes("henvisning_v1_1_ny.xml").replace(b"henvisning/2012-02-15", b"henvisning/2003-10-13")
    assert _error(data).code is AppRecError.UNSUPPORTED_FORMAT


def test_xsd_invalid_message(validator: XsdValidator) -> None:
    # Puts the fødselsnummer where a date belongs: the error must not echo it.
    data = _v2("<DateOfBirth>1957-03-14</DateOfBirth>", f"<DateOfBirth>{FNR}</DateOfBirth>")
    err = _error(data, validator)
    assert err.code is AppRecError.NOT_VALID
    assert "XSD" in err.message
    assert "DateOfBirth" in err.message
