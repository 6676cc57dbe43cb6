"""Epikrise 1.0/1.1/1.2 without a database: parse by namespace, build 1.2 (XSD-valid), the FHIR mapping and
back (exact), and XML → model → FHIR → model → XML keeping the clinical content."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from app.adapters.epikrise.build import build_epikrise
from app.adapters.epikrise.from_fhir import epikrise_from_bundle, text_of
from app.adapters.epikrise.model import EpikriseVersion
from app.adapters.epikrise.parse import lenient_envelope, parse_epikrise
from app.adapters.epikrise.to_fhir import DISCHARGE_SUMMARY, epikrise_to_bundle, narrative
from app.adapters.kith.cli import main
from app.adapters.kith.errors import KithError
from app.adapters.kith.model import MessageKind
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.epikrise.test_epikrise_http import SAMPLES, V1_0, V1_1, message
from tests.adapters.kith.conftest import legacy_files

SOURCES = [V1_0, V1_1, "epikrise_v1_2_lab_vedlegg.xml", *legacy_files(SAMPLES)]


@pytest.mark.parametrize(("source", "version"), [(V1_0, EpikriseVersion.V1_0), (V1_1, EpikriseVersion.V1_1)])
def test_versions_are_told_by_namespace(source: str, version: EpikriseVersion) -> None:
    msg = parse_epikrise(parse_xml(message(source)))
    assert (msg.version, msg.kind) == (version, MessageKind.NEW)
    assert msg.sender.ident("HER") == "8100001"
    assert msg.sender.sub_organisation is not None
    assert msg.receiver.name == "Fjordby legesenter"
    assert msg.patient.ident("FNR") == "14835712347"
    (stay,) = msg.stays
    assert [d.concept.code for d in stay.diagnoses] == ["I214", "I10"]
    assert [m.drug.code for m in stay.medications] == ["B01A C06"]
    assert [c.heading.code for c in stay.comments if c.heading] == ["FO", "OP"]
    assert msg.referrals[0].content_type is not None
    assert msg.referrals[0].content_type.display == "Utredning"


@pytest.mark.parametrize("source", legacy_files(SAMPLES))
def test_official_sample(source: Path) -> None:
    msg = parse_epikrise(parse_xml(message(source)))
    assert msg.version is EpikriseVersion.V1_2
    (stay,) = msg.stays
    assert stay.diagnoses[0].modifiers[0].value.code == "B951"
    assert stay.texts[0].description is not None
    assert stay.texts[0].description.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert [r.relation.code for r in msg.patient_relations] == ["HHE", "FLE"]
    assert msg.responsible[0].professional.ident("HPR") == "9144900"


@pytest.mark.parametrize("source", SOURCES)
def test_round_trips(source: Path | str, validator: XsdValidator) -> None:
    msg = parse_epikrise(parse_xml(message(source)))
    out = build_epikrise(msg)
    result = validator.validate(out)
    assert result.valid, result.errors
    assert not result.skipped
    again = parse_epikrise(parse_xml(to_bytes(out)))
    assert dataclasses.replace(again, version=msg.version) == msg
    bundle, anchor = epikrise_to_bundle(msg)
    composition = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Composition"
    )
    assert composition["type"]["coding"] == [DISCHARGE_SUMMARY]
    assert anchor.about in {e.get("fullUrl") for e in bundle["entry"]}
    back = epikrise_from_bundle(bundle)
    assert back == msg
    result = validator.validate(build_epikrise(back))
    assert result.valid, result.errors


def test_text_parts_keep_markup_or_plain_text() -> None:
    assert text_of(narrative("a < b & c")) == "a < b & c"
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>Hei</p></div>'
    assert text_of(narrative(div)) == div


def test_not_an_epikrise_and_a_header_read_leniently() -> None:
    data = message(V1_1).replace(b'<IssueDate V="2024-03-04T09:00:00"/>', b"", 1)
    root = parse_xml(data)
    with pytest.raises(KithError) as raised:
        parse_epikrise(root)
    assert raised.value.code.value == "T02"
    found = lenient_envelope(root)
    assert found is not None
    assert found[0] == "3d1c6a52-0c4f-4a51-9b7e-1f0e2a7d1101"
    assert found[3] is not None
    assert found[3].ident("HER") == "8100001"
    other = parse_xml(data.replace(b"xmlstds/epikrise/2006-09-23", b"xmlstds/epikrise/1999"))
    with pytest.raises(KithError) as raised:
        parse_epikrise(other)
    assert raised.value.code.value == "T10"


def test_cli_converts_an_epikrise_both_ways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.xml"
    source.write_bytes(message(V1_1))
    assert main(["convert", str(source)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    bundle = tmp_path / "bundle.json"
    bundle.write_text(out, encoding="utf-8")
    assert epikrise_from_bundle(json.loads(out)) == parse_epikrise(parse_xml(message(V1_1)))
    assert main(["convert", str(bundle)]) == 0
    out, err = capsys.readouterr()
    back = parse_epikrise(parse_xml(out.encode("utf-8")))
    assert back.version is EpikriseVersion.V1_2
    assert dataclasses.replace(back, version=EpikriseVersion.V1_1) == parse_epikrise(parse_xml(message(V1_1)))
