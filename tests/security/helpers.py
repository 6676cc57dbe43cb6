"""Small helpers shared by the security tests (and other packages' tests of secured behaviour)."""

from __future__ import annotations

import base64

import orjson


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_token(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    """A hand-made compact JWS (e.g. alg=none), for tokens no library will produce."""
    return f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}.{b64url(signature)}"


def token_parts(token: str) -> tuple[dict[str, object], dict[str, object]]:
    """Header and claims of a compact JWS, unverified."""
    header, payload, _ = token.split(".")
    return orjson.loads(_b64decode(header)), orjson.loads(_b64decode(payload))


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
