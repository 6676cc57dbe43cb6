"""/docs: Swagger UI served by this server, from the copy of swagger-ui 5 that the fastapi-offline package
ships, so the API documentation works where there is no internet (many hospital networks) and loads no
third-party script. FastAPI's own /docs fetches swagger-ui from a CDN.

Its Authorize button takes a bearer token (the document's security scheme); the page and its files are
public (app.security.authn), the API calls it makes carry the token.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import FileResponse, HTMLResponse, Response

from app.fhir.outcome import Category, FhirError

DOCS = "/docs"
OAUTH2_REDIRECT = f"{DOCS}/oauth2-redirect"
ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
# Served without a bearer token: exact paths.
PUBLIC_PATHS = frozenset({DOCS, OAUTH2_REDIRECT, *(f"{DOCS}/{name}" for name in FILES)})

router = APIRouter(include_in_schema=False)


@router.get(DOCS)
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{DOCS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS}/favicon.png",
        oauth2_redirect_url=OAUTH2_REDIRECT,
        # The document is large (2.3 MB: 35 types' paths and R4 schemas): no models section at the foot of
        # the page and no syntax colouring keep it quick to open and to expand an operation in.
        swagger_ui_parameters={
            "persistAuthorization": True,
            "defaultModelsExpandDepth": -1,
            "syntaxHighlight": False,
        },
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(DOCS + "/{name}")
async def swagger_ui_file(name: str) -> Response:
    if name not in FILES:
        raise FhirError(Category.NOT_FOUND, f"No file {DOCS}/{name}")
    return FileResponse(ASSETS / name, media_type=FILES[name], headers={"Cache-Control": "max-age=86400"})
