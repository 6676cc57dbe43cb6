"""PLO samples from the legacy reference data (HELSEBRO_LEGACY_DIR); the tests skip without them."""

from __future__ import annotations

import pytest
from lxml import etree

from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import get_validator
from tests.adapters.legacy import legacy_dir, legacy_files

SAMPLES = "samples/plo/**/*.xml"
LOGISTICS = "samples/plo/**/Pasientlogistikk_*.xml"

__all__ = ["LOGISTICS", "SAMPLES", "assert_xsd_valid", "legacy_files", "sample"]


def sample(name: str) -> bytes:
    """A sample by file name (any folder); skips without the reference data."""
    root = legacy_dir()
    if root is None:
        pytest.skip("legacy reference data not found: set HELSEBRO_LEGACY_DIR")
    found = sorted(root.glob(f"samples/plo/**/{name}"))
    assert found, name
    return found[0].read_bytes()


def assert_xsd_valid(root: etree._Element) -> etree._Element:
    """The message (as written, read again from its bytes) valid against the official XSDs."""
    found = legacy_dir()
    assert found is not None
    written = parse_xml(to_bytes(root))
    result = get_validator(found / "xsd").validate(written)
    assert not result.skipped, "the XSDs were not found"
    assert result.valid, result.errors
    return written
