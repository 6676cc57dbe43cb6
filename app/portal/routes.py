"""The citizen portal's routes: its page and static files, and the development sign-in.

None of them touches patient data: the page calls the FHIR API like any other client, with the citizen's
bearer token, so the access policy and the audit apply to everything it shows. The sign-in mints that
token with the development issuer for one of the demo citizens, and exists only while the server trusts
that issuer (AUTH_DEV_ISSUER, with authentication on); otherwise it is a 404 like any unknown path.

The routes are left out of the OpenAPI document: they are a web page, not part of the FHIR API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from app.config import Settings
from app.fhir.outcome import Category, FhirError
from app.portal.citizens import demo_citizen, demo_citizens
from app.security.devtoken import CITIZEN_SCOPES, mint_citizen_token

PREFIX = "/portal"
STATIC = Path(__file__).resolve().parent / "static"
PORTAL_CLIENT_ID = "helsebro-portal"  # the client the audit trail names for the portal's requests
TOKEN_SECONDS = 1800
# The citizen's read scopes, and creating a Communication: her own notes and questions on the pregnancy
# card. What she may write is the pregnancy card guard's (only a note about a patient) and the access
# policy's (only for herself) to decide; the scope only lets the request reach them.
PORTAL_SCOPES = f"{CITIZEN_SCOPES} patient/Communication.c"
_MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
# The page's files, by name: only these are served.
ASSETS = {p.name: p for p in sorted(STATIC.iterdir()) if p.suffix in _MEDIA and p.name != "index.html"}
INDEX = STATIC / "index.html"
# Everything the page loads comes from this server; nothing may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
SIGN_IN = f"{PREFIX}/dev-login"
CITIZENS = f"{PREFIX}/citizens"
# Served without a bearer token (app.security.authn): exact paths, the page's files included.
PUBLIC_PATHS = frozenset({PREFIX, f"{PREFIX}/", SIGN_IN, CITIZENS, *(f"{PREFIX}/{name}" for name in ASSETS)})

router = APIRouter(include_in_schema=False)


def _file(path: Path) -> Response:
    return FileResponse(path, media_type=_MEDIA[path.suffix], headers=SECURITY_HEADERS)


@router.get(PREFIX)
@router.get(f"{PREFIX}/")
async def page() -> Response:
    return _file(INDEX)


def _dev_sign_in(request: Request) -> Settings:
    """The settings, when the development sign-in is offered; otherwise 404, as for any unknown path."""
    settings: Settings = request.app.state.settings
    if settings.auth_mode != "jwt" or not settings.auth_dev_issuer:
        raise FhirError(
            Category.NOT_FOUND,
            f"No FHIR endpoint at {request.method} {request.url.path}: the development sign-in exists only "
            "with AUTH_DEV_ISSUER on",
        )
    return settings


def _json(body: Any, status: int = 200) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


@router.get(CITIZENS)
async def citizens(request: Request) -> Response:
    """The demo citizens one may sign in as (no fødselsnummer)."""
    _dev_sign_in(request)
    return _json([c.public() for c in demo_citizens()])


@router.post(SIGN_IN)
async def dev_login(request: Request) -> Response:
    """A citizen token for a demo citizen: `{"patient": "<demo Patient id>"}` gives a token response
    (RFC 6749 5.1) with the SMART launch context `patient`, the token limited to that Patient."""
    settings = _dev_sign_in(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise FhirError(Category.INVALID, 'The body must be JSON: {"patient": "<id>"}') from None
    patient_id = body.get("patient") if isinstance(body, dict) else None
    citizen = demo_citizen(patient_id) if isinstance(patient_id, str) else None
    if citizen is None:
        raise FhirError(Category.INVALID, "patient must name one of the demo citizens", "value", ("patient",))
    token = await asyncio.to_thread(
        mint_citizen_token,
        settings.auth_dev_key_file,
        citizen.pid,
        audience=settings.auth_audience,
        scopes=PORTAL_SCOPES,
        lifetime=TOKEN_SECONDS,
        client_id=PORTAL_CLIENT_ID,
        patient=citizen.patient_id,
        name=citizen.name,
    )
    return _json(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": PORTAL_SCOPES,
            "patient": citizen.patient_id,
        }
    )


def _asset_route(path: Path) -> None:
    async def asset() -> Response:
        return _file(path)

    router.add_api_route(f"{PREFIX}/{path.name}", asset, methods=["GET"], name=f"portal-{path.name}")


# One route per file, exact paths: any other path is the fallback route's (404, or 405 for a method that
# another route serves), and no path from a request ever reaches the file system.
for _path in ASSETS.values():
    _asset_route(_path)
