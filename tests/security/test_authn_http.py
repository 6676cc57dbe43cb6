"""Authentication through HTTP: every refused token gets 401 + OperationOutcome + WWW-Authenticate."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.config import Settings
from app.security.authn import install_authentication
from app.security.devtoken import DEV_ISSUER, dev_jwks, load_or_create_key
from tests.conftest import BASE
from tests.security.helpers import auth_header, b64url, token_parts, unsigned_token

Mint = Callable[..., str]


def assert_unauthorized(response: httpx.Response, error: str = "invalid_token") -> str:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["www-authenticate"] == f'Bearer realm="helsebro", error="{error}"'
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"
    diagnostics: str = outcome["issue"][0]["diagnostics"]
    return diagnostics


def system_token(mint: Mint, **kwargs: Any) -> str:
    return str(mint(subject="lab-system", scopes="system/*.cruds", client_id="lab-system", **kwargs))


async def test_no_authorization_header(secure_client: httpx.AsyncClient) -> None:
    response = await secure_client.get("/Patient/x")
    assert "bearer token" in assert_unauthorized(response, "invalid_request")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "token-without-scheme"])
async def test_unusable_authorization_header(secure_client: httpx.AsyncClient, value: str) -> None:
    response = await secure_client.get("/Patient/x", headers={"Authorization": value})
    assert_unauthorized(response, "invalid_request")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "e30.e30.", "é.é.é", "x" * 20_000])
async def test_malformed_token(secure_client: httpx.AsyncClient, token: str) -> None:
    headers = [(b"authorization", f"Bearer {token}".encode())]  # UTF-8 bytes, as a client might send
    response = await secure_client.get("/Patient/x", headers=headers)
    assert_unauthorized(response)


# Times are taken when the test runs, not when it is collected (a slow suite outlived "in 10 minutes").
REFUSED_CLAIMS: dict[str, Callable[[int], dict[str, Any]]] = {
    "expired": lambda now: {"expires_at": now - 120},
    "not valid yet": lambda now: {"not_before": now + 600},
    "aud": lambda now: {"audience": "another-server"},
    "issuer": lambda now: {"issuer": "https://issuer.example"},
}


@pytest.mark.parametrize("message", sorted(REFUSED_CLAIMS))
async def test_refused_claims(secure_client: httpx.AsyncClient, mint: Mint, message: str) -> None:
    token = system_token(mint, **REFUSED_CLAIMS[message](int(time.time())))
    response = await secure_client.get("/Patient/x", headers=auth_header(token))
    assert message in assert_unauthorized(response)


@pytest.fixture(scope="module")
def other_key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


@pytest.mark.parametrize("same_kid", [True, False])
async def test_signed_by_another_key(
    secure_client: httpx.AsyncClient, mint: Mint, dev_key_file: Path, other_key: RSAKey, same_kid: bool
) -> None:
    _, claims = token_parts(system_token(mint))
    kid = load_or_create_key(dev_key_file).kid if same_kid else other_key.kid
    forged = jwt.encode({"alg": "RS256", "kid": kid}, claims, other_key)
    response = await secure_client.get("/Patient/x", headers=auth_header(forged))
    expected = "signature is invalid" if same_kid else "signing key is not known"
    assert expected in assert_unauthorized(response)


async def test_alg_none(secure_client: httpx.AsyncClient, mint: Mint, dev_key_file: Path) -> None:
    header, claims = token_parts(system_token(mint))
    for alg in ("none", "None", "NONE"):
        token = unsigned_token({"alg": alg, "kid": header["kid"], "typ": "JWT"}, claims)
        response = await secure_client.get("/Patient/x", headers=auth_header(token))
        assert "algorithm" in assert_unauthorized(response)


async def test_hs256_signed_with_the_public_key(
    secure_client: httpx.AsyncClient, mint: Mint, dev_key_file: Path
) -> None:
    """The classic alg confusion: HMAC keyed with the issuer's public key, which anyone can fetch."""
    header, claims = token_parts(system_token(mint))
    public_jwk = dev_jwks(dev_key_file)["keys"][0]
    public_pem = RSAKey.import_key(public_jwk).as_pem(private=False)
    for secret in (public_pem, str(public_jwk).encode()):
        unsigned = unsigned_token({"alg": "HS256", "kid": header["kid"]}, claims).rsplit(".", 1)[0]
        signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
        token = f"{unsigned}.{b64url(signature)}"
        response = await secure_client.get("/Patient/x", headers=auth_header(token))
        assert "algorithm" in assert_unauthorized(response)


async def test_valid_system_token_gets_past_authentication(
    secure_client: httpx.AsyncClient, mint: Mint
) -> None:
    response = await secure_client.get("/Patient/x", headers=auth_header(system_token(mint)))
    assert response.status_code == 404  # authenticated; the patient just does not exist
    assert "www-authenticate" not in response.headers


async def test_person_scopes_without_a_person(secure_client: httpx.AsyncClient, mint: Mint) -> None:
    token = mint(subject="svc", scopes="user/*.cruds")
    response = await secure_client.get("/Patient/x", headers=auth_header(token))
    assert assert_unauthorized(response) == "token does not identify a person"


async def test_personnel_without_organisation(secure_client: httpx.AsyncClient, mint: Mint) -> None:
    token = mint(subject="p", scopes="user/*.rs", hpr="9100001", category="LE")
    response = await secure_client.get("/Patient/x", headers=auth_header(token))
    assert assert_unauthorized(response) == "personnel tokens must name their organisation"


@pytest.mark.parametrize("path", ["/metadata", "/.well-known/smart-configuration", "/openapi.json", "/docs"])
async def test_public_paths_need_no_token(secure_client: httpx.AsyncClient, path: str) -> None:
    response = await secure_client.get(path)
    assert response.status_code == 200


async def test_smart_configuration(secure_client: httpx.AsyncClient) -> None:
    response = await secure_client.get("/.well-known/smart-configuration")
    assert response.headers["content-type"] == "application/json"
    config = response.json()
    assert config["issuer"] == DEV_ISSUER
    assert config["helsebro_trusted_issuers"] == [DEV_ISSUER]
    assert {"permission-v2", "permission-v1", "client-confidential-asymmetric"} <= set(config["capabilities"])
    assert {"patient/*.rs", "user/*.cruds", "system/*.cruds"} <= set(config["scopes_supported"])
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "token_endpoint" not in config  # none configured: no invented endpoint
    assert "jwks_uri" not in config


async def test_the_token_is_never_logged(
    secure_client: httpx.AsyncClient, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    good = system_token(mint)
    expired = system_token(mint, expires_at=int(time.time()) - 120)
    with caplog.at_level(logging.DEBUG):
        await secure_client.get("/Patient/x", headers=auth_header(good))
        response = await secure_client.get("/Patient/x", headers=auth_header(expired))
    for token in (good, expired):
        assert token not in caplog.text
        assert token.split(".")[1] not in caplog.text
        assert token not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"nhn-access-basis": "curiosity"},
        {"nhn-access-basis": "Emergency"},
        {"nhn-source-system": "x" * 201},
        {"nhn-emergency-reason": "r" * 501},
        {"nhn-emergency-reason": "unconscious", "nhn-access-basis": "care-relation"},
        {"nhn-source-system": "EPJ\x1b[2Kforged"},  # terminal escape: would rewrite log lines
    ],
)
async def test_bad_nhn_headers(secure_client: httpx.AsyncClient, mint: Mint, headers: dict[str, str]) -> None:
    token = mint(subject="p", scopes="user/*.rs", hpr="9100001", orgnr="991000003", category="LE")
    response = await secure_client.get("/Patient/x", headers={**auth_header(token), **headers})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert next(iter(headers)) in response.json()["issue"][0]["diagnostics"]  # names the header at fault
    assert "www-authenticate" not in response.headers


async def test_headers_are_checked_only_after_the_token(secure_client: httpx.AsyncClient) -> None:
    response = await secure_client.get("/Patient/x", headers={"nhn-access-basis": "curiosity"})
    assert_unauthorized(response, "invalid_request")


# -- the Principal a route sees (a small app, so the shared secure app keeps only real routes) ------------


@pytest.fixture
async def echo_client(dev_key_file: Path) -> Any:
    app = FastAPI()
    settings = Settings(auth_mode="jwt", auth_dev_issuer=True, auth_dev_key_file=str(dev_key_file))
    install_authentication(app, settings)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        p = request.state.principal
        return {
            "kind": p.kind,
            "hpr": p.hpr,
            "orgnr": p.orgnr,
            "access_basis": p.access_basis,
            "source_system": p.source_system,
            "emergency_reason": p.emergency_reason,
            "scopes": sorted(p.scopes.raw),
        }

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


async def test_principal_merges_request_headers_over_claims(
    echo_client: httpx.AsyncClient, mint: Mint
) -> None:
    token = mint(
        subject="p",
        scopes="openid user/*.rs",
        hpr="9100001",
        orgnr="991000003",
        category="LE",
        access_basis="care-relation",
        source_system="claim-system",
    )
    plain = (await echo_client.get("/whoami", headers=auth_header(token))).json()
    assert plain == {
        "kind": "personnel",
        "hpr": "9100001",
        "orgnr": "991000003",
        "access_basis": "care-relation",
        "source_system": "claim-system",
        "emergency_reason": None,
        "scopes": ["openid", "user/*.rs"],
    }
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"nhn-source-system", b"  DIPS Arena  "),
        (b"nhn-emergency-reason", "Bevisstløs pasient i akuttmottak".encode()),  # UTF-8 in a header
    ]
    merged = (await echo_client.get("/whoami", headers=headers)).json()
    assert merged["access_basis"] == "emergency"
    assert merged["source_system"] == "DIPS Arena"
    assert merged["emergency_reason"] == "Bevisstløs pasient i akuttmottak"
    consent = (
        await echo_client.get(
            "/whoami", headers={**auth_header(token), "nhn-access-basis": "patient-consent"}
        )
    ).json()
    assert consent["access_basis"] == "patient-consent"


async def test_auth_off_installs_no_middleware(dev_key_file: Path) -> None:
    app = FastAPI()
    install_authentication(app, Settings(auth_mode="off", auth_dev_key_file=str(dev_key_file)))
    assert app.state.auth_enabled is False
    assert app.user_middleware == []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        assert (await client.get("/.well-known/smart-configuration")).status_code == 200


async def test_secure_app_state(secure_app: FastAPI) -> None:
    assert secure_app.state.auth_enabled is True
    assert DEV_ISSUER in secure_app.state.token_verifier.trusted_issuers
