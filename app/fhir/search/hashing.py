"""Stable 64-bit hashes for index rows: the same input gives the same number on every machine and run."""

from __future__ import annotations

from hashlib import blake2b

_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in type or parameter names


def hash64(*parts: str) -> int:
    digest = blake2b(_SEPARATOR.join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # fits a signed BIGINT column
