"""Issue 16, gap 6: Henvisning 1.1 is validated against the official XSDs as far as they go (a stand-in
for the missing poKomponent v1.5), and 1.1 written from a 2.0 referral is valid."""

from __future__ import annotations

import pytest

from app.adapters.kith.henvisning import parse_henvisning, serialize_henvisning
from app.adapters.kith.model import HenvisningVersion, TextSection
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.kith.conftest import fixture_bytes

COMMENTS = "henvisning_v2_kommentar_uten_kode.xml"


@pytest.mark.parametrize("name", ["henvisning_v1_1_ny.xml", "henvisning_v1_1_lab.xml"])
def test_henvisning_1_1_is_validated(validator: XsdValidator, name: str) -> None:
    result = validator.validate(parse_xml(fixture_bytes(name)))
    assert not result.skipped, result.reason
    assert result.valid, result.errors


def test_henvisning_1_1_that_breaks_its_schema_is_invalid(validator: XsdValidator) -> None:
    data = fixture_bytes("henvisning_v1_1_ny.xml").replace(b"<Id>7a8b9c0d", b"<Unknown/><Id>7a8b9c0d")
    result = validator.validate(parse_xml(data))
    assert not result.skipped
    assert not result.valid


@pytest.mark.parametrize(
    "name", [COMMENTS, "henvisning_v2_nytilstand.xml", "henvisning_v2_videre.xml", "henvisning_v1_1_lab.xml"]
)
def test_1_1_written_from_any_referral_is_valid(validator: XsdValidator, name: str) -> None:
    ref = parse_henvisning(fixture_bytes(name))
    written = serialize_henvisning(ref, HenvisningVersion.V1_1)
    result = validator.validate(parse_xml(written))
    assert not result.skipped, result.reason
    assert result.valid, result.errors


def test_comments_without_codes_keep_their_content_in_1_1() -> None:
    ref = parse_henvisning(fixture_bytes(COMMENTS))
    assert [c.codes for c in ref.comments] == [(), ()]
    back = parse_henvisning(serialize_henvisning(ref, HenvisningVersion.V1_1))
    assert back.comments == ref.comments
    assert back.comments[1] == TextSection(text="Pasienten kan ikke møte i uke 32.")
