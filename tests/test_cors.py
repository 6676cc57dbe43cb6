"""CORS for configured origins: preflights answered before authentication, headers a browser client needs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import BASE, make_settings
from tests.databases import TestDatabase

PORTAL = "https://portal.example.no"


@pytest.fixture
async def cors_app(session_databases: dict[str, TestDatabase], backend: str) -> AsyncIterator[FastAPI]:
    # Authentication on (with no trusted issuer every token is refused): a preflight must pass anyway.
    app = create_app(
        make_settings(
            session_databases[backend].url, auth_mode="jwt", cors_origins=f"{PORTAL}, https://app.example.no/"
        )
    )
    yield app
    await app.state.database.dispose()


async def test_a_preflight_is_answered_before_authentication(cors_app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cors_app), base_url=BASE) as http:
        preflight = await http.options(
            "/Patient",
            headers={
                "Origin": PORTAL,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, if-none-exist, prefer",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == PORTAL
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "if-none-exist", "prefer"} <= {
            h.strip() for h in allowed.split(",")
        }
        # The answer to the real request (here 401) carries the CORS headers, so the app can read it.
        refused = await http.get("/Patient", headers={"Origin": PORTAL})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == PORTAL
        exposed = refused.headers["access-control-expose-headers"]
        assert {"ETag", "Location", "X-Request-Id"} <= {h.strip() for h in exposed.split(",")}
        # The trailing slash of a configured origin does not matter; an origin not listed gets nothing.
        other = await http.get("/metadata", headers={"Origin": "https://app.example.no"})
        assert other.headers["access-control-allow-origin"] == "https://app.example.no"
        stranger = await http.get("/metadata", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        denied = await http.options(
            "/Patient", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert denied.status_code == 400


async def test_without_origins_no_cors_headers(client: httpx.AsyncClient) -> None:
    reply = await client.get("/metadata", headers={"Origin": PORTAL})
    assert "access-control-allow-origin" not in reply.headers
