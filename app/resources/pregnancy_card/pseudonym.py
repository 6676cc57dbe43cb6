"""Pseudonyms of the research extract (pure): keyed HMAC-SHA256, stable across runs, useless without the key.

A plain hash of a fødselsnummer is no pseudonym: there are few enough numbers to hash them all. With a
secret key (PSEUDONYM_KEY) only its holder can link a pseudonym back to a person, which is what GDPR art.
4(5) asks of pseudonymisation ("additional information kept separately"). Each kind of thing is hashed
in its own domain, so a woman's pseudonym never equals a pregnancy's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from app.resources.no_basis.identifiers import DNR_SYSTEM, FNR_SYSTEM

MIN_KEY_BYTES = 32  # HMAC-SHA256's own block of entropy; a shorter key is a configuration error
_NATIONAL = (FNR_SYSTEM, DNR_SYSTEM)


def pseudonym(key: bytes, domain: str, value: str) -> str:
    """HMAC-SHA256(key, domain NUL value) as 64 hex digits."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes")
    message = domain.encode() + b"\x00" + value.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def person_identity(patient: Mapping[str, Any]) -> str:
    """What identifies the woman across records and servers: her fødselsnummer (or D-nummer), so the
    pseudonym survives a merged or re-registered Patient; else the server's Patient id."""
    for identifier in patient.get("identifier") or []:
        if isinstance(identifier, Mapping) and identifier.get("system") in _NATIONAL:
            value = identifier.get("value")
            if isinstance(value, str) and value:
                return f"nin:{value}"
    return f"Patient/{patient.get('id')}"


def woman(key: bytes, patient: Mapping[str, Any]) -> str:
    return pseudonym(key, "woman", person_identity(patient))


def pregnancy(key: bytes, episode_id: str) -> str:
    """The pregnancy's own pseudonym: a later extract's record of it can replace an earlier one."""
    return pseudonym(key, "pregnancy", f"EpisodeOfCare/{episode_id}")
