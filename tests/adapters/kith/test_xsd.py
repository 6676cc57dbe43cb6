"""XsdValidator: skip rules, caching, combined MsgHead + content validation."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator, get_validator
from tests.adapters.kith.conftest import fixture_bytes


def test_no_directory_skips_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    validator = XsdValidator(None)
    root = parse_xml(fixture_bytes("henvisning_v2_nytilstand.xml"))
    with caplog.at_level(logging.WARNING, logger="app.adapters.kith.xsd"):
        first, second = validator.validate(root), validator.validate(root)
    assert first.skipped
    assert second.skipped
    assert not first.valid
    assert first.reason == "no XSD directory configured"
    assert len(caplog.records) == 1
    assert validator.check(root).skipped  # skipping is not an error


def test_missing_schema_skips(tmp_path: Path, legacy: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Only the MsgHead family: the Henvisning 2.0 schema is missing.
    shutil.copytree(legacy / "xsd" / "felleskomponenter", tmp_path / "felleskomponenter")
    validator = XsdValidator(tmp_path)
    with caplog.at_level(logging.WARNING, logger="app.adapters.kith.xsd"):
        result = validator.validate(parse_xml(fixture_bytes("henvisning_v2_nytilstand.xml")))
    assert result.skipped
    assert result.reason is not None
    assert "http://ehelse.no/xmlstds/henvisning/2017-11-30" in result.reason
    assert "skipped" in caplog.text


def test_content_is_validated_with_the_msghead(validator: XsdValidator) -> None:
    data = fixture_bytes("henvisning_v2_nytilstand.xml").replace(b"<ReqServ>", b"<ReqServX>", 1)
    data = data.replace(b"</ReqServ>", b"</ReqServX>", 1)
    result = validator.validate(parse_xml(data))
    assert not result.valid
    assert not result.skipped
    assert any("Henvisning" in e for e in result.errors)


def test_compiled_schemas_are_cached(validator: XsdValidator) -> None:
    root = parse_xml(fixture_bytes("henvisning_v2_nytilstand.xml"))
    validator.validate(root)
    key = XsdValidator.namespaces(root)
    compiled = validator._cache[key]
    validator.validate(root)
    assert validator._cache[key] is compiled


def test_namespaces_include_business_document() -> None:
    root = parse_xml(fixture_bytes("henvisning_v2_videre.xml"))
    assert XsdValidator.namespaces(root) == {
        "http://www.kith.no/xmlstds/msghead/2006-05-24",
        "http://ehelse.no/xmlstds/henvisning/2017-11-30",
        "http://www.kith.no/xmlstds/base64container",  # the attachment
    }


def test_get_validator_is_shared(legacy: Path) -> None:
    assert get_validator(legacy / "xsd") is get_validator(str(legacy / "xsd"))
