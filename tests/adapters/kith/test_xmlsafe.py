"""Hostile input: every case raises KithError with the right Volven 8221 code and no document content."""

from __future__ import annotations

import pytest

from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from tests.adapters.kith.conftest import fixture_bytes

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE MsgHead SYSTEM "http://127.0.0.1:9/evil.dtd">
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24"/>"""


def _raises(data: bytes, code: AppRecError, **kwargs: int) -> KithError:
    with pytest.raises(KithError) as info:
        parse_xml(data, **kwargs)
    assert info.value.code is code
    return info.value


@pytest.mark.parametrize(
    "data", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"]
)
def test_any_dtd_is_refused(data: bytes) -> None:
    err = _raises(data, AppRecError.FORMAT_OTHER)
    assert "root:" not in err.message
    assert "lol" not in err.message


def test_dtd_in_utf16_is_refused_after_parse() -> None:
    # The byte pre-check cannot see "<!DOCTYPE" in UTF-16; the docinfo check must still refuse it.
    data = EXTERNAL_ENTITY.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
    _raises(data.decode().encode("utf-16"), AppRecError.FORMAT_OTHER)


def test_oversize_is_refused_before_parsing() -> None:
    err = _raises(b"<a>" + b"x" * 200 + b"</a>", AppRecError.FORMAT_OTHER, max_bytes=100)
    assert "100" in err.message


def test_default_limit_is_5_mb() -> None:
    _raises(b"<a>" + b"x" * (5 * 1024 * 1024) + b"</a>", AppRecError.FORMAT_OTHER)


@pytest.mark.parametrize("data", [b"", b"   ", b"hello", b"<a><b></a>", b"\xff\xfe\x00garbage"])
def test_not_xml(data: bytes) -> None:
    _raises(data, AppRecError.NOT_XML)


def test_syntax_error_message_has_no_patient_data() -> None:
    data = fixture_bytes("henvisning_v2_nytilstand.xml")
    broken = data.replace(b"<Id>14835712347</Id>", b"<Id>14835712347</Idx>")
    err = _raises(broken, AppRecError.NOT_XML)
    assert "14835712347" not in err.message
    assert "14835712347" not in str(err)


def test_encoding_declaration_is_honoured() -> None:
    latin1 = '<?xml version="1.0" encoding="ISO-8859-1"?><a>Ærø Øyvind Åse</a>'.encode("iso-8859-1")
    assert parse_xml(latin1).text == "Ærø Øyvind Åse"


def test_wrong_declared_encoding_is_unreadable() -> None:
    _raises(b'<?xml version="1.0" encoding="bogus-enc"?><a/>', AppRecError.NOT_XML)


def test_entities_are_not_expanded_even_without_doctype_check() -> None:
    # Character references are fine (they are not entities with declarations).
    assert parse_xml(b"<a>&#216;&amp;</a>").text == "Ø&"


def test_to_bytes_writes_utf8_declaration() -> None:
    assert to_bytes(parse_xml(b"<a>\xc3\x98</a>")).startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_parse_henvisning_refuses_hostile_input_too() -> None:
    with pytest.raises(KithError) as info:
        parse_henvisning(EXTERNAL_ENTITY)
    assert info.value.code is AppRecError.FORMAT_OTHER


def test_error_carries_description() -> None:
    err = _raises(b"nope", AppRecError.NOT_XML)
    assert err.description == "Ikke XML / ikke 'well formed' / uleselig"
    assert str(err).startswith("T01: ")
