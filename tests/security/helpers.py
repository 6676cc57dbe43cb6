"""Small helpers shared by the security tests (and other packages' tests of secured behaviour)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx
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


@dataclass
class World:
    http: httpx.AsyncClient
    system: dict[str, str]
    gp: dict[str, str]
    hospital: dict[str, str]
    other: dict[str, str]
    kari: dict[str, str]
    nils: dict[str, str]

    async def put(self, resource: dict[str, Any], who: dict[str, str] | None = None) -> httpx.Response:
        url = f"/{resource['resourceType']}/{resource['id']}"
        return await self.http.put(url, json=resource, headers=who or self.system)

    async def audit(self, query: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/AuditEvent?{query}&_count=200", headers=self.system)
        assert response.status_code == 200, response.text
        return [e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


def ids(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == mode
    }
