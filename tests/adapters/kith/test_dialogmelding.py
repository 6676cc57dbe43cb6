"""Dialogmelding 1.1 status på henvisning: built like the official sample, validates, parses back."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from app.adapters.kith.dialogmelding import (
    TYPE_STATUS,
    Dialogmelding,
    NoteRole,
    ReferralStatus,
    StatusNote,
    build_dialogmelding,
    parse_dialogmelding,
    status_text,
)
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import OID_REFERRAL_STATUS, OriginalReference, Patient
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.kith.conftest import fixture_bytes, legacy_files


def _status(status: ReferralStatus, text: str) -> Dialogmelding:
    ref = parse_henvisning(fixture_bytes("henvisning_v2_nytilstand.xml"))
    assessor = ref.professionals[0].professional
    return Dialogmelding(
        msg_id="5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170",
        gen_date=datetime(2024, 9, 9, 13, 0),
        sender=ref.receiver,
        receiver=ref.sender,
        # the MsgHead patient: the 2.0-only extras (marital status ...) do not travel in a Dialogmelding
        patient=Patient(
            idents=ref.patient.idents,
            name=ref.patient.name,
            birth_date=ref.patient.birth_date,
            sex=ref.patient.sex,
            address=ref.patient.address,
            telecoms=ref.patient.telecoms,
        ),
        referral=OriginalReference(parent_id=ref.msg_id, conversation_id=ref.msg_id),
        issue_date=datetime(2024, 9, 9, 12, 55),
        notes=(
            StatusNote(
                status=status.coded,
                text=text,
                note_date=date(2024, 9, 9),
                roles=(NoteRole(professional=assessor),),
            ),
        ),
    )


@pytest.mark.parametrize("status", list(ReferralStatus))
def test_status_validates_and_roundtrips(status: ReferralStatus, validator: XsdValidator) -> None:
    text = status_text(
        "Henvisningen er vurdert.", deadline=date(2024, 11, 15), appointment=datetime(2024, 10, 1, 9, 30)
    )
    msg = _status(status, text)
    root = build_dialogmelding(msg)
    result = validator.validate(root)
    assert result.valid, result.errors
    again = parse_dialogmelding(parse_xml(to_bytes(root)))
    assert again == msg
    assert again.msg_type == TYPE_STATUS


def test_right_to_care_carries_code_and_deadline() -> None:
    msg = _status(
        ReferralStatus.RIGHT_TO_CARE,
        status_text("Rett til nødvendig helsehjelp.", deadline=date(2024, 11, 15)),
    )
    note = parse_dialogmelding(build_dialogmelding(msg)).notes[0]
    assert (note.status.code, note.status.system) == ("2", OID_REFERRAL_STATUS)
    assert note.text is not None
    assert "15.11.2024" in note.text


def test_unconfirmed_statuses_have_no_invented_code() -> None:
    assert ReferralStatus.RECEIVED.coded.code is None
    assert ReferralStatus.RECEIVED.coded.system is None


@pytest.mark.parametrize(
    "path", legacy_files("samples/Dialogmelding/Dialogmelding-v1-1/Status_paa_henvisning-*.xml")
)
def test_official_status_sample(path: Path, validator: XsdValidator) -> None:
    msg = parse_dialogmelding(parse_xml(path.read_bytes()))
    assert msg.msg_type.code == "DIALOG_STATUS_HENVISNING"
    assert msg.notes[0].status.code == "1"
    assert msg.notes[0].status.system == OID_REFERRAL_STATUS
    assert msg.referral is not None
    assert msg.copy_to[0].role.code == "COP"
    contact = msg.notes[0].roles[0].professional
    assert contact is not None
    assert contact.ident("HPR") == "258521"
    rebuilt = build_dialogmelding(msg)
    assert validator.validate(rebuilt).valid
    assert parse_dialogmelding(parse_xml(to_bytes(rebuilt))) == msg


def test_other_business_document_is_refused() -> None:
    with pytest.raises(KithError) as info:
        parse_dialogmelding(parse_xml(fixture_bytes("henvisning_v2_nytilstand.xml")))
    assert info.value.code is AppRecError.UNSUPPORTED_FORMAT
