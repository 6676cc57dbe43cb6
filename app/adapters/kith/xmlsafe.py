"""Hardened parsing of untrusted XML bytes (lxml), defusedxml-grade.

- No DTD at all: a DOCTYPE (internal subset or external reference) is refused. KITH messages never carry
  one, and refusing it outright removes entity-expansion bombs, external entities (file:///etc/passwd) and
  external DTD fetches in one rule. The parser is also configured so that, even before the check, entities
  are not resolved, no DTD is loaded and nothing is fetched from the network.
- A size limit checked before parsing; lxml's `huge_tree` stays off (libxml2's own depth/text limits hold).
- The encoding declaration is honoured (bytes go to libxml2 untouched): older messages are ISO-8859-1.
"""

from __future__ import annotations

from lxml import etree

from app.adapters.kith.errors import AppRecError, KithError

__all__ = ["DEFAULT_MAX_BYTES", "KithError", "parse_xml", "to_bytes"]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

# Quick refusal before libxml2 reads an internal subset at all; the docinfo check below is the real guard
# (it also covers encodings where these ASCII bytes would not appear literally).
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype")


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_pis=True,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise KithError (T01 unreadable, T99 forbidden)."""
    if not isinstance(data, bytes | bytearray):
        raise KithError(AppRecError.NOT_XML, "message must be given as bytes")
    if len(data) > max_bytes:
        raise KithError(AppRecError.FORMAT_OTHER, f"message exceeds the size limit of {max_bytes} bytes")
    if not data.strip():
        raise KithError(AppRecError.NOT_XML, "message is empty")
    if any(marker in data for marker in _DTD_MARKERS):
        raise KithError(AppRecError.FORMAT_OTHER, "DTD/DOCTYPE declarations are not allowed")
    try:
        root = etree.fromstring(bytes(data), parser=_parser())
    except etree.XMLSyntaxError as exc:
        # Position and libxml2 error type only: the message text may quote document content.
        line, column = exc.position
        raise KithError(
            AppRecError.NOT_XML,
            f"not well-formed XML at line {line}, column {column} (libxml2 error {exc.code})",
        ) from None
    except (ValueError, LookupError):
        raise KithError(AppRecError.NOT_XML, "unreadable XML (encoding)") from None
    if root is None:
        raise KithError(AppRecError.NOT_XML, "message has no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url or docinfo.public_id:
        raise KithError(AppRecError.FORMAT_OTHER, "DTD/DOCTYPE declarations are not allowed")
    return root


def to_bytes(root: etree._Element) -> bytes:
    """Serialize as UTF-8 with an XML declaration (what every current KITH message uses)."""
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data
