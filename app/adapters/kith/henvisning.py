"""Henvisning entry points: detect the version, parse into the model, serialize to 1.1 or 2.0.

Detection is by root element and namespace only (never by schemaLocation or file name): `Message` in a
1.0/1.1 namespace, or a `MsgHead` whose type is HENVISNING_NYTILSTAND / HENVISNING_VIDERE.
"""

from __future__ import annotations

from lxml import etree

from app.adapters.kith import _xml as x
from app.adapters.kith import henvisning_v1, henvisning_v2, msghead
from app.adapters.kith.errors import AppRecError, KithError
from app.adapters.kith.model import HenvisningVersion, Referral
from app.adapters.kith.xmlsafe import DEFAULT_MAX_BYTES, parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator

__all__ = ["parse_henvisning", "parse_henvisning_tree", "serialize_henvisning", "serialize_henvisning_tree"]


def parse_henvisning_tree(root: etree._Element) -> Referral:
    if root.tag == x.q(msghead.NS, "MsgHead"):
        return henvisning_v2.parse_v2(msghead.parse_msghead(root))
    if x.local(root) == "Message" and x.namespace(root) in henvisning_v1.VERSIONS:
        return henvisning_v1.parse_v1(root)
    raise KithError(
        AppRecError.UNSUPPORTED_FORMAT, "not a supported Henvisning message (root element or namespace)"
    )


def parse_henvisning(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, validator: XsdValidator | None = None
) -> Referral:
    """Parse untrusted bytes: hardened XML parse, optional XSD check (T02), then the model.

    Raises KithError with the Volven 8221 code to put in the AppRec.
    """
    root = parse_xml(data, max_bytes=max_bytes)
    if validator is not None:
        validator.check(root)
    return parse_henvisning_tree(root)


def serialize_henvisning_tree(ref: Referral, version: HenvisningVersion) -> etree._Element:
    if version is HenvisningVersion.V2_0:
        return henvisning_v2.serialize_v2(ref)
    if version is HenvisningVersion.V1_1:
        return henvisning_v1.serialize_v1_1(ref)
    raise ValueError("Henvisning can be written as 1.1 or 2.0 only")


def serialize_henvisning(ref: Referral, version: HenvisningVersion) -> bytes:
    return to_bytes(serialize_henvisning_tree(ref, version))
