"""Dialogmelding 1.0 and 1.1, pure: each official sample and the 1.0 fixtures parse, map to FHIR and back to
the same model, and are written again as XSD-valid XML with their clinical content."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.adapters.kith.dialog_fhir import (
    CONVERSATION_SYSTEM,
    dialogmelding_from_bundle,
    dialogmelding_to_bundle,
    link_to_conversation,
)
from app.adapters.kith.dialogmelding import (
    DialogKind,
    Dialogmelding,
    DialogVersion,
    build_dialogmelding,
    parse_dialogmelding,
)
from app.adapters.kith.errors import AppRecError, KithError, norwegian
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.kith.conftest import FIXTURES, legacy_files

FIXTURE_FILES = [pytest.param(p, id=p.name) for p in sorted(FIXTURES.glob("dialogmelding_v1_0_*.xml"))]
SAMPLES = legacy_files("samples/Dialogmelding/Dialogmelding-v1-1/*.xml")


def _parse(path: Path) -> Dialogmelding:
    return parse_dialogmelding(parse_xml(path.read_bytes(), max_bytes=10_000_000))


@pytest.mark.parametrize("path", [*FIXTURE_FILES, *SAMPLES])
def test_xml_to_fhir_to_xml_keeps_the_message(path: Path, validator: XsdValidator) -> None:
    msg = _parse(path)
    assert validator.validate(parse_xml(path.read_bytes(), max_bytes=10_000_000)).valid
    bundle, anchor = dialogmelding_to_bundle(msg)
    back = dialogmelding_from_bundle(bundle)
    assert back == msg
    assert anchor.about == bundle["entry"][-1]["fullUrl"]
    root = build_dialogmelding(back)
    result = validator.validate(root)
    assert result.valid, result.errors
    assert parse_dialogmelding(parse_xml(to_bytes(root), max_bytes=10_000_000)) == msg
    # the same message gives the same Bundle (idempotent on the server)
    assert dialogmelding_to_bundle(msg)[0] == bundle


@pytest.mark.parametrize("path", [*FIXTURE_FILES, *SAMPLES])
def test_clinical_content_is_in_native_elements(path: Path) -> None:
    msg = _parse(path)
    bundle, _ = dialogmelding_to_bundle(msg)
    resources = [e["resource"] for e in bundle["entry"]]
    content = [r for r in resources if r["resourceType"] in ("Communication", "CommunicationRequest")]
    assert len(content) == len(msg.notes) + len(msg.requests)
    texts = [p.get("contentString") for r in content for p in r.get("payload", [])]
    for note in msg.notes:
        assert note.text in texts
    for req in msg.requests:
        assert req.question in texts
    attachments = [
        p["contentAttachment"] for r in content for p in r.get("payload", []) if "contentAttachment" in p
    ]
    assert [a.get("data") for a in attachments] == [a.content_base64 for a in msg.attachments]
    conversation = msg.referral.conversation_id if msg.referral else msg.msg_id
    for r in content:
        ids = r.get("identifier", []) + ([r["groupIdentifier"]] if "groupIdentifier" in r else [])
        assert {"system": CONVERSATION_SYSTEM, "value": conversation} in ids
    [patient] = [r for r in resources if r["resourceType"] == "Patient"]
    assert patient["identifier"][0]["value"] in ("13116900216", "14835712347")


def test_kinds() -> None:
    request = _parse(FIXTURES / "dialogmelding_v1_0_foresporsel.xml")
    answer = _parse(FIXTURES / "dialogmelding_v1_0_svar.xml")
    assert (request.kind, answer.kind) == (DialogKind.REQUEST, DialogKind.ANSWER)
    helsefaglig = dataclasses.replace(
        answer, msg_type=dataclasses.replace(answer.msg_type, code="DIALOG_HELSEFAGLIG")
    )
    assert helsefaglig.kind is DialogKind.ANSWER  # a note quoting a request
    assert dataclasses.replace(
        helsefaglig, notes=(dataclasses.replace(answer.notes[0], request=None),)
    ).kind is (DialogKind.NOTE)
    avvik = dataclasses.replace(answer, msg_type=dataclasses.replace(answer.msg_type, code="DIALOG_AVVIK"))
    assert avvik.kind is DialogKind.DEVIATION


def test_a_1_0_message_is_written_as_1_1(validator: XsdValidator) -> None:
    msg = dataclasses.replace(_parse(FIXTURES / "dialogmelding_v1_0_svar.xml"), version=DialogVersion.V1_1)
    root = build_dialogmelding(msg)
    assert validator.validate(root).valid
    assert parse_dialogmelding(parse_xml(to_bytes(root))) == msg


def test_a_message_without_a_patient_id_is_refused() -> None:
    msg = _parse(FIXTURES / "dialogmelding_v1_0_foresporsel.xml")
    with pytest.raises(KithError) as info:
        dialogmelding_to_bundle(dataclasses.replace(msg, patient=None))
    assert info.value.code is AppRecError.PATIENT_FNR_MISSING


def test_answer_is_threaded_to_the_stored_request() -> None:
    bundle, _ = dialogmelding_to_bundle(_parse(FIXTURES / "dialogmelding_v1_0_svar.xml"))
    parent = {
        "id": "rec1",
        "about": [{"reference": "CommunicationRequest/cr1"}, {"reference": "ServiceRequest/s1"}],
    }
    link_to_conversation(bundle, parent, parent)
    [answer] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"]
    assert answer["inResponseTo"] == [{"reference": "Communication/rec1"}]
    assert answer["partOf"] == [{"reference": "Communication/rec1"}]
    assert answer["basedOn"] == [{"reference": "CommunicationRequest/cr1"}]
    assert answer["about"] == [{"reference": "ServiceRequest/s1"}]


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("mandatory element <TemaKodet> is missing", "obligatorisk element <TemaKodet> mangler"),
        ("invalid date/time in <DateOfBirth>", "ugyldig dato/tid i <DateOfBirth>"),
        (
            "business document is not a Dialogmelding 1.0 or 1.1",
            "fagmeldingen er ikke en Dialogmelding 1.0 eller 1.1",
        ),
        ("something new about <Foo>", "XML validerer ikke (<Foo>)"),
    ],
)
def test_receipt_texts_are_norwegian(message: str, text: str) -> None:
    assert norwegian(KithError(AppRecError.NOT_VALID, message)) == text
