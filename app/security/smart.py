"""/.well-known/smart-configuration (SMART App Launch v2 discovery), public like /metadata.

Helsebro is a resource server, not an authorization server: tokens come from HelseID (or the dev issuer).
The authorization and token endpoints are therefore published only when configured
(`AUTH_AUTHORIZATION_ENDPOINT` / `AUTH_TOKEN_ENDPOINT`); no endpoint is invented. Clients of the dev issuer get their tokens from `python -m app.security.devtoken`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from app.config import Settings
from app.security.devtoken import DEV_ISSUER
from app.security.scopes import IDENTITY_ADMIN_SCOPE

SMART_PATH = "/.well-known/smart-configuration"

SCOPES_SUPPORTED = (
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "patient/*.rs",
    "patient/*.read",
    "user/*.cruds",
    "user/*.rs",
    "user/*.read",
    "user/*.write",
    "system/*.cruds",
    "system/*.rs",
    IDENTITY_ADMIN_SCOPE,
)
CAPABILITIES = (
    "permission-v2",
    "permission-v1",
    "permission-patient",
    "permission-user",
    "client-confidential-asymmetric",
    "context-standalone-patient",
)


def _setting(settings: Settings, name: str) -> str:
    # Empty means "not published": the server runs no authorization server of its own.
    value: str = getattr(settings, name)
    return value.strip()


def smart_configuration(settings: Settings) -> dict[str, Any]:
    issuers = [i.strip() for i in settings.auth_issuers.split(",") if i.strip()]
    if settings.auth_dev_issuer:
        issuers.append(DEV_ISSUER)
    config: dict[str, Any] = {}
    if issuers:
        config["issuer"] = issuers[0]
    if settings.auth_jwks_url:
        config["jwks_uri"] = settings.auth_jwks_url
    authorization_endpoint = _setting(settings, "auth_authorization_endpoint")
    token_endpoint = _setting(settings, "auth_token_endpoint")
    if authorization_endpoint:
        config["authorization_endpoint"] = authorization_endpoint
        config["response_types_supported"] = ["code"]
    if token_endpoint:
        config["token_endpoint"] = token_endpoint
        config["token_endpoint_auth_methods_supported"] = ["private_key_jwt"]
    config.update(
        {
            "grant_types_supported": ["client_credentials", "authorization_code"],
            "scopes_supported": list(SCOPES_SUPPORTED),
            "capabilities": list(CAPABILITIES),
            "code_challenge_methods_supported": ["S256"],
            # Not in the SMART specification (extra properties are allowed): every issuer we trust.
            "helsebro_trusted_issuers": issuers,
        }
    )
    return config


def install_smart(app: FastAPI, settings: Settings) -> None:
    body = orjson.dumps(smart_configuration(settings))
    router = APIRouter()

    # Out of the OpenAPI document: it describes the FHIR API, and openapi.json is a drift-checked file.
    @router.get(SMART_PATH, include_in_schema=False)
    async def smart_configuration_route() -> Response:
        return Response(body, media_type="application/json")

    # First in line: the FHIR router's catch-all /{res_type}/{res_id} would otherwise answer this path
    # (with a 400 about a malformed resource type), since main.py installs security after it.
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added


def capability_security(settings: Settings) -> dict[str, Any]:
    """CapabilityStatement.rest.security: SMART on FHIR, with the OAuth endpoints when they are known."""
    security: dict[str, Any] = {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ],
        "description": "Bearer JWTs (HelseID-style claims) with SMART v2 scopes; access needs a care "
        "relation (tjenstlig behov), own data or a proxy; every access to patient data is audited.",
    }
    uris = [
        {"url": name, "valueUri": value}
        for name, value in (
            ("authorize", _setting(settings, "auth_authorization_endpoint")),
            ("token", _setting(settings, "auth_token_endpoint")),
        )
        if value
    ]
    if uris:
        security["extension"] = [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": uris,
            }
        ]
    return security
