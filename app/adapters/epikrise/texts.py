"""Text parts: XHTML markup (a serialized `div`) or plain text, and the plain text of either."""

from __future__ import annotations

import re

from app.adapters.kith.errors import KithError
from app.adapters.kith.xmlsafe import parse_xml

_SPACE = re.compile(r"\s+")


def is_markup(text: str) -> bool:
    return text.lstrip().startswith("<")


def plain_text(text: str) -> str:
    """The words of a text part, whitespace collapsed (markup parsed with the hardened parser)."""
    if not is_markup(text):
        return text
    try:
        root = parse_xml(text.encode("utf-8"))
    except KithError:
        return text
    return _SPACE.sub(" ", " ".join(root.itertext())).strip()
