"""Token verification (keys, issuers, caching, JWKS refresh) and the Principal built from claims."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, Key, RSAKey

from app.config import Settings
from app.fhir.outcome import Category, FhirError
from app.security import tokens
from app.security.devtoken import (
    CLAIM_CATEGORY,
    CLAIM_HPR,
    CLAIM_ORGNR,
    CLAIM_PID,
    DEV_ISSUER,
    load_or_create_key,
)
from app.security.principal import Scope
from app.security.tokens import TokenVerifier, principal_from_claims

EXTERNAL = "https://helseid-sts.test.example"
JWKS_URL = "https://helseid-sts.test.example/.well-known/openid-configuration/jwks"
KNOWN = frozenset({"Patient", "Observation"})


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def settings(dev_key_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"auth_dev_issuer": True, "auth_dev_key_file": str(dev_key_file), **overrides}
    return Settings(**values)


def external_token(key: Key, alg: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": EXTERNAL, "aud": "helsebro", "sub": "s", "exp": now + 600, "client_id": "c", **claims}
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])


async def refused(verifier: TokenVerifier, token: str) -> FhirError:
    with pytest.raises(FhirError) as info:
        await verifier.verify(token)
    assert info.value.category is Category.UNAUTHORIZED
    assert token not in info.value.message
    return info.value


@pytest.fixture
def count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = tokens._check_signature

    def counting(token: str, key: Key, algorithm: str) -> bool:
        calls.append(algorithm)
        return real(token, key, algorithm)

    monkeypatch.setattr(tokens, "_check_signature", counting)
    return calls


# -- verification and its cache ----------------------------------------------------------------------


async def test_signature_is_checked_once_per_token(
    dev_key_file: Path, mint: Callable[..., str], count_signature_checks: list[str]
) -> None:
    verifier = TokenVerifier(settings(dev_key_file))
    token = mint(subject="svc", scopes="system/*.rs")
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert first == second
    assert first["sub"] == "svc"
    assert count_signature_checks == ["RS256"]
    await verifier.verify(mint(subject="svc", scopes="system/*.rs"))  # another token: checked again
    assert len(count_signature_checks) == 2


async def test_a_cached_token_still_expires(dev_key_file: Path, mint: Callable[..., str]) -> None:
    clock = FakeClock()
    verifier = TokenVerifier(settings(dev_key_file), clock=clock)
    token = mint(subject="svc", scopes="system/*.rs", expires_at=int(clock.now) + 60)
    await verifier.verify(token)
    clock.now += 60 + tokens.LEEWAY_SECONDS + 1
    error = await refused(verifier, token)
    assert "expired" in error.message


async def test_a_refused_token_is_not_cached(
    dev_key_file: Path, mint: Callable[..., str], count_signature_checks: list[str]
) -> None:
    verifier = TokenVerifier(settings(dev_key_file, auth_audience="other"))
    token = mint(subject="svc", scopes="system/*.rs")
    await refused(verifier, token)
    await refused(verifier, token)
    assert count_signature_checks == []  # claims are checked before the (costlier) signature


async def test_cache_is_bounded(
    dev_key_file: Path, mint: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "CACHE_SIZE", 10)
    verifier = TokenVerifier(settings(dev_key_file))
    for n in range(25):
        await verifier.verify(mint(subject=f"svc-{n}", scopes="system/*.rs"))
    assert len(verifier._cache) <= 10


async def test_leeway_for_clock_skew(dev_key_file: Path, mint: Callable[..., str]) -> None:
    verifier = TokenVerifier(settings(dev_key_file))
    now = int(time.time())
    await verifier.verify(mint(subject="a", scopes="", expires_at=now - 10))
    await verifier.verify(mint(subject="b", scopes="", not_before=now + 10))
    await refused(verifier, mint(subject="c", scopes="", expires_at=now - 60))
    await refused(verifier, mint(subject="d", scopes="", not_before=now + 60))


async def test_expiry_boundary_in_and_out_of_the_cache(dev_key_file: Path, mint: Callable[..., str]) -> None:
    # RFC 7519 4.1.4: not accepted on or after exp (plus the leeway), both when first seen and when cached.
    clock = FakeClock()
    clock.now = float(int(clock.now))
    verifier = TokenVerifier(settings(dev_key_file), clock=clock)
    deadline = int(clock.now) - tokens.LEEWAY_SECONDS
    assert "expired" in (await refused(verifier, mint(subject="a", scopes="", expires_at=deadline))).message
    token = mint(subject="b", scopes="", expires_at=deadline + 1)
    await verifier.verify(token)
    clock.now += 1
    assert "expired" in (await refused(verifier, token)).message


async def test_issued_in_the_future(dev_key_file: Path, mint: Callable[..., str]) -> None:
    clock = FakeClock()
    verifier = TokenVerifier(settings(dev_key_file), clock=clock)
    token = mint(subject="svc", scopes="")  # iat is now
    clock.now -= (
        tokens.LEEWAY_SECONDS + 5
    )  # the server's clock is behind the issuer's by more than the leeway
    assert "iat" in (await refused(verifier, token)).message
    clock.now += 10  # within the leeway
    await verifier.verify(token)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"exp": None}, "expiry"),
        ({"exp": "tomorrow"}, "expiry"),
        ({"aud": None}, "aud"),
        ({"aud": ["someone-else"]}, "aud"),
        ({"iss": None}, "issuer"),
        ({"nbf": "now"}, "nbf"),
        ({"iat": "today"}, "iat"),
        ({"sub": 42}, "sub"),  # registered claims must have their registered types (RFC 7519 4.1)
    ],
)
async def test_claim_checks(
    dev_key_file: Path, mint: Callable[..., str], extra: dict[str, Any], message: str
) -> None:
    verifier = TokenVerifier(settings(dev_key_file))
    error = await refused(verifier, mint(subject="svc", scopes="", extra_claims=extra))
    assert message in error.message


async def test_audience_may_be_a_list(dev_key_file: Path, mint: Callable[..., str]) -> None:
    verifier = TokenVerifier(settings(dev_key_file))
    claims = await verifier.verify(mint(subject="s", scopes="", extra_claims={"aud": ["x", "helsebro"]}))
    assert claims["sub"] == "s"


async def test_dev_issuer_is_trusted_only_when_enabled(dev_key_file: Path, mint: Callable[..., str]) -> None:
    verifier = TokenVerifier(settings(dev_key_file, auth_dev_issuer=False))
    error = await refused(verifier, mint(subject="svc", scopes="system/*.rs"))
    assert "issuer" in error.message


# -- configured issuers: JWKS file and URL --------------------------------------------------------------


def jwks_of(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


async def test_jwks_file_keys_sign_for_configured_issuers_only(
    tmp_path: Path, dev_key_file: Path, mint: Callable[..., str], rsa_key: RSAKey, ec_key: ECKey
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps(jwks_of(rsa_key, ec_key)))
    verifier = TokenVerifier(settings(dev_key_file, auth_issuers=f" {EXTERNAL} ,", auth_jwks_file=str(jwks)))
    assert (await verifier.verify(external_token(rsa_key, "RS256")))["iss"] == EXTERNAL
    assert (await verifier.verify(external_token(rsa_key, "PS256")))["iss"] == EXTERNAL
    assert (await verifier.verify(external_token(ec_key, "ES256")))["iss"] == EXTERNAL
    # Keys are bound to their issuers: neither may sign in the other's name.
    dev_key = load_or_create_key(dev_key_file)
    assert "key" in (await refused(verifier, external_token(dev_key, "RS256"))).message
    forged = jwt.encode(
        {"alg": "RS256", "kid": rsa_key.kid},
        {"iss": DEV_ISSUER, "aud": "helsebro", "sub": "s", "exp": int(time.time()) + 60},
        rsa_key,
    )
    assert "key" in (await refused(verifier, forged)).message


async def test_jwks_url_is_fetched_cached_and_refetched_for_unknown_kids(
    dev_key_file: Path, rsa_key: RSAKey, ec_key: ECKey
) -> None:
    published: list[Key] = [rsa_key]
    fetches: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(str(request.url))
        return httpx.Response(200, content=orjson.dumps(jwks_of(*published)))

    clock = FakeClock()
    verifier = TokenVerifier(
        settings(dev_key_file, auth_issuers=EXTERNAL, auth_jwks_url=JWKS_URL),
        clock=clock,
        transport=httpx.MockTransport(handler),
    )
    await verifier.verify(external_token(rsa_key, "RS256"))
    await verifier.verify(external_token(rsa_key, "RS256", sub="other"))
    assert fetches == [JWKS_URL]
    # The issuer rotates to a new key: not refetched more often than every few minutes...
    published = [rsa_key, ec_key]
    rotated = external_token(ec_key, "ES256")
    await refused(verifier, rotated)
    assert len(fetches) == 1
    # ...and found once that interval has passed.
    clock.now += tokens.JWKS_REFETCH_SECONDS + 1
    assert (await verifier.verify(rotated))["iss"] == EXTERNAL
    assert len(fetches) == 2


async def test_unreachable_jwks_url_refuses_without_crashing(dev_key_file: Path, rsa_key: RSAKey) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    verifier = TokenVerifier(
        settings(dev_key_file, auth_issuers=EXTERNAL, auth_jwks_url=JWKS_URL),
        transport=httpx.MockTransport(handler),
    )
    assert "key" in (await refused(verifier, external_token(rsa_key, "RS256"))).message


def test_jwks_parsing_skips_symmetric_encryption_and_kidless_keys(rsa_key: RSAKey) -> None:
    public = rsa_key.as_dict(private=False)
    data = {
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**public, "kid": "enc", "use": "enc"},
            {k: v for k, v in public.items() if k != "kid"},
            {**rsa_key.as_dict(private=True), "kid": "private-one"},
            "garbage",
        ]
    }
    keys = tokens.parse_jwks(data)
    assert set(keys) == {"private-one"}
    assert not keys["private-one"].is_private  # only the public part is ever kept


# -- principal_from_claims ------------------------------------------------------------------------------


def claims(**extra: Any) -> dict[str, Any]:
    return {"iss": DEV_ISSUER, "sub": "sub-1", "exp": 2_000_000_000, "client_id": "app", **extra}


def test_personnel_principal() -> None:
    principal = principal_from_claims(
        claims(
            **{CLAIM_HPR: "9100001", CLAIM_ORGNR: "991000003", CLAIM_CATEGORY: "LE"},
            scope="openid user/*.cruds system/*.cruds",
            name="Lege Demo",
            jti="j1",
        ),
        KNOWN,
    )
    assert principal.kind == "personnel"
    assert (principal.hpr, principal.orgnr, principal.category) == ("9100001", "991000003", "LE")
    assert principal.scopes.scopes == (Scope("user", "*", frozenset("cruds")),)  # system/ dropped
    assert principal.scopes.raw == ("openid", "user/*.cruds", "system/*.cruds")
    assert (principal.name, principal.token_id, principal.expires_at) == ("Lege Demo", "j1", 2_000_000_000)


def test_personnel_must_name_an_organisation() -> None:
    with pytest.raises(FhirError) as info:
        principal_from_claims(claims(**{CLAIM_HPR: "9100001"}, scope="user/*.rs"), KNOWN)
    assert info.value.message == "personnel tokens must name their organisation"


@pytest.mark.parametrize("category", ["le", "LEG", "L", "1A"])
def test_personnel_category_must_be_a_code(category: str) -> None:
    with pytest.raises(FhirError):
        principal_from_claims(
            claims(**{CLAIM_HPR: "9100001", CLAIM_ORGNR: "991000003", CLAIM_CATEGORY: category}), KNOWN
        )


def test_citizen_principal_keeps_patient_and_user_scopes() -> None:
    principal = principal_from_claims(
        claims(**{CLAIM_PID: "13897250017"}, scope=["patient/*.rs", "user/Observation.r", "system/*.r"]),
        KNOWN,
    )
    assert principal.kind == "citizen"
    assert principal.pid == "13897250017"
    assert principal.scopes.contexts == frozenset({"patient", "user"})


def test_system_principal_uses_azp_and_system_scopes_only() -> None:
    principal = principal_from_claims(
        {"iss": EXTERNAL, "exp": 2_000_000_000, "azp": "lab-system", "scope": "system/Observation.cruds"},
        KNOWN,
    )
    assert principal.kind == "system"
    assert (principal.client_id, principal.subject) == ("lab-system", "lab-system")
    assert principal.scopes.allows("Observation", "c")


def test_a_token_without_a_person_cannot_use_person_scopes() -> None:
    with pytest.raises(FhirError) as info:
        principal_from_claims(claims(scope="user/*.cruds patient/*.rs"), KNOWN)
    assert info.value.message == "token does not identify a person"
    assert info.value.category is Category.UNAUTHORIZED


def test_numeric_identifier_claims_and_bad_claim_types() -> None:
    principal = principal_from_claims(claims(**{CLAIM_HPR: 9100001, CLAIM_ORGNR: 991000003}), KNOWN)
    assert (principal.hpr, principal.orgnr) == ("9100001", "991000003")
    with pytest.raises(FhirError) as info:
        principal_from_claims(claims(**{CLAIM_PID: {"value": "13897250017"}}), KNOWN)
    assert "13897250017" not in info.value.message
    with pytest.raises(FhirError):
        principal_from_claims(claims(scope=42), KNOWN)
    with pytest.raises(FhirError):
        principal_from_claims(claims(**{"helsebro:access_basis": "because"}), KNOWN)


async def test_unregistered_header_parameters_are_ignored(
    tmp_path: Path, dev_key_file: Path, rsa_key: RSAKey
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps(jwks_of(rsa_key)))
    verifier = TokenVerifier(settings(dev_key_file, auth_issuers=EXTERNAL, auth_jwks_file=str(jwks)))
    header = {"alg": "RS256", "kid": rsa_key.kid, "typ": "at+jwt", "x-vendor": "y" * 600}
    body = {"iss": EXTERNAL, "aud": "helsebro", "sub": "s", "exp": int(time.time()) + 60}
    lenient = jws.JWSRegistry(algorithms=["RS256"], strict_check_header=False)
    token = jwt.encode(header, body, rsa_key, registry=lenient)
    assert (await verifier.verify(token))["sub"] == "s"


async def test_principal_is_memoised_with_the_verified_token(
    dev_key_file: Path, mint: Callable[..., str]
) -> None:
    verifier = TokenVerifier(settings(dev_key_file))
    token = mint(subject="svc", scopes="system/Patient.rs")
    first = await verifier.principal(token, KNOWN)
    assert first.kind == "system"
    assert await verifier.principal(token, KNOWN) is first
