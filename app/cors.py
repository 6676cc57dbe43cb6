"""CORS for configured origins (CORS_ORIGINS), so SMART apps and portals can call the API from a browser.

Starlette's middleware answers preflights itself, before authentication (a preflight carries no token),
and adds the response headers a FHIR client in a browser must read: ETag, Location and Content-Location
(writes and async jobs), Last-Modified, X-Progress and X-Request-Id. Bearer tokens are sent in a header,
not as cookies, so credentials mode is not needed and `*` is a safe choice for open test servers.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.fhir.routing import ALL_METHODS

REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Accept",
    "If-Match",
    "If-None-Match",
    "If-None-Exist",
    "If-Modified-Since",
    "Prefer",
    "X-Request-Id",
    # The access basis, source system and emergency reason personnel systems send (app/security/authn.py).
    "nhn-access-basis",
    "nhn-source-system",
    "nhn-emergency-reason",
]
EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Content-Location",
    "Last-Modified",
    "X-Progress",
    "X-Request-Id",
    "Allow",
]
PREFLIGHT_CACHE_S = 600


def origins(setting: str) -> list[str]:
    return [origin.strip().rstrip("/") for origin in setting.split(",") if origin.strip()]


def install_cors(app: FastAPI, setting: str) -> None:
    allowed = origins(setting)
    if not allowed:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_methods=ALL_METHODS,
        allow_headers=REQUEST_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_CACHE_S,
    )
