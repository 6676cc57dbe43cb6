"""Development token issuer: a local RSA key that signs HelseID-style tokens for `make run` and the tests.

    TOKEN=$(python -m app.security.devtoken personnel --hpr 9144900 --orgnr 974600951)
    curl -H "Authorization: Bearer $TOKEN" http://localhost:8000/Patient

The server trusts this issuer only when AUTH_DEV_ISSUER is on. Never enable it in production: whoever can
read the key file can sign any token. Use synthetic identities only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from joserfc import jwt
from joserfc.jwk import RSAKey

DEV_ISSUER = "helsebro-dev"
ALGORITHM = "RS256"

# Claim names (HelseID style, plus Helsebro's own for what HelseID has no claim for).
CLAIM_HPR = "helseid://claims/hpr/hpr_number"
CLAIM_PID = "helseid://claims/identity/pid"
CLAIM_ORGNR = "helseid://claims/client/claims/orgnr_parent"
CLAIM_CHILD_ORGNR = "helseid://claims/client/claims/orgnr_child"
CLAIM_CATEGORY = "helsebro:health_personnel_category"
CLAIM_ACCESS_BASIS = "helsebro:access_basis"
CLAIM_SOURCE_SYSTEM = "helsebro:source_system"


def load_or_create_key(path: str | Path) -> RSAKey:
    """The dev issuer's private key; created (RSA 2048, mode 0600) on first use."""
    path = Path(path)
    if not path.exists():
        _create_key(path)
    key = RSAKey.import_key(orjson.loads(path.read_bytes()))
    key.ensure_kid()
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALGORITHM}, auto_kid=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(key.as_dict(private=True)))
        # link() never overwrites: when the server and the CLI race, the first key wins for both.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def dev_public_key(path: str | Path) -> RSAKey:
    return RSAKey.import_key(load_or_create_key(path).as_dict(private=False))


def dev_jwks(path: str | Path) -> dict[str, Any]:
    """The public JWKS of the dev issuer."""
    return {"keys": [load_or_create_key(path).as_dict(private=False)]}


def mint_token(
    key_file: str | Path,
    *,
    subject: str,
    scopes: str,
    audience: str = "helsebro",
    issuer: str = DEV_ISSUER,
    lifetime: int = 3600,
    hpr: str | None = None,
    category: str | None = None,
    orgnr: str | None = None,
    child_orgnr: str | None = None,
    pid: str | None = None,
    client_id: str = "helsebro-dev-client",
    patient: str | None = None,
    name: str | None = None,
    access_basis: str | None = None,
    source_system: str | None = None,
    extra_claims: dict[str, Any] | None = None,
    expires_at: int | None = None,
    not_before: int | None = None,
) -> str:
    """A signed RS256 token. In `extra_claims` a None value removes that claim (to test missing claims)."""
    key = load_or_create_key(key_file)
    now = int(time.time())
    optional = {
        CLAIM_HPR: hpr,
        CLAIM_CATEGORY: category,
        CLAIM_ORGNR: orgnr,
        CLAIM_CHILD_ORGNR: child_orgnr,
        CLAIM_PID: pid,
        "patient": patient,
        "name": name,
        CLAIM_ACCESS_BASIS: access_basis,
        CLAIM_SOURCE_SYSTEM: source_system,
        "nbf": not_before,
    }
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": expires_at if expires_at is not None else now + lifetime,
        "jti": uuid.uuid4().hex,
        "client_id": client_id,
        "scope": scopes,
        **{k: v for k, v in optional.items() if v is not None},
    }
    for claim, value in (extra_claims or {}).items():
        if value is None:
            claims.pop(claim, None)
        else:
            claims[claim] = value
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


CITIZEN_SCOPES = "patient/*.rs"


def citizen_subject(pid: str) -> str:
    """A stable token subject for a citizen that does not show their fødselsnummer."""
    return f"dev-citizen-{uuid.uuid5(uuid.NAMESPACE_OID, pid).hex[:16]}"


def mint_citizen_token(
    key_file: str | Path,
    pid: str,
    *,
    scopes: str = CITIZEN_SCOPES,
    subject: str | None = None,
    **options: Any,
) -> str:
    """A citizen's token (fødselsnummer or D-nummer as pid), as the CLI's `citizen` kind mints it; the
    citizen portal's development sign-in (app/portal) mints its tokens here too. `options` are
    mint_token's."""
    return mint_token(key_file, subject=subject or citizen_subject(pid), scopes=scopes, pid=pid, **options)


# -- CLI --------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from app.config import Settings

    settings = Settings()
    helpful = argparse.ArgumentDefaultsHelpFormatter
    common = argparse.ArgumentParser(add_help=False, formatter_class=helpful)
    common.add_argument("--key-file", default=settings.auth_dev_key_file, help="dev issuer key (JWK)")
    common.add_argument("--audience", default=settings.auth_audience, help="token aud (AUTH_AUDIENCE)")
    common.add_argument("--lifetime", type=int, default=3600, help="seconds")
    common.add_argument("--subject", help="token sub (default: derived from the identity)")
    common.add_argument("--name", help="display name")
    common.add_argument("--patient", help="SMART launch context: a Patient id")
    common.add_argument(
        "--access-basis", choices=("care-relation", "emergency", "patient-consent"), help="NHN access basis"
    )
    common.add_argument("--source-system", help="NHN source system")

    parser = argparse.ArgumentParser(
        prog="python -m app.security.devtoken",
        description="Print a token signed by the Helsebro development issuer (synthetic data only).",
        epilog="A test harness or integration test (Postman, schemathesis, a CI job) should use a system "
        "client: `python -m app.security.devtoken system --client-id my-tests` (scope system/*.cruds): it "
        "may read and write everything, audited under its client id. Personnel tokens see only what their "
        "care relations allow, citizen tokens only the citizen's own record. `<kind> --help` shows each "
        "kind's options and defaults.",
        formatter_class=helpful,
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    personnel = sub.add_parser(
        "personnel", parents=[common], formatter_class=helpful, help="health personnel (HPR + organisation)"
    )
    personnel.add_argument("--hpr", required=True, help="HPR number")
    personnel.add_argument("--orgnr", required=True, help="organisation number of the legal entity")
    personnel.add_argument("--child-orgnr", help="organisation number of the sub-unit")
    personnel.add_argument("--category", default="LE", help="Volven 9060 category (LE, SP, JO, ...)")
    personnel.add_argument("--client-id", default="helsebro-dev-client", help="token client_id")
    personnel.add_argument("--scope", default="user/*.cruds", help="SMART scopes")
    citizen = sub.add_parser(
        "citizen", parents=[common], formatter_class=helpful, help="a citizen (fødselsnummer)"
    )
    citizen.add_argument("--pid", required=True, help="fødselsnummer or D-nummer (synthetic)")
    citizen.add_argument("--client-id", default="helsebro-dev-client", help="token client_id")
    citizen.add_argument("--scope", default=CITIZEN_SCOPES, help="SMART scopes")
    system = sub.add_parser(
        "system", parents=[common], formatter_class=helpful, help="a system (client credentials)"
    )
    system.add_argument("--client-id", required=True, help="token client_id, also its sub")
    system.add_argument("--scope", default="system/*.cruds", help="SMART scopes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options: dict[str, Any] = {
        "audience": args.audience,
        "lifetime": args.lifetime,
        "client_id": args.client_id,
        "patient": args.patient,
        "name": args.name,
        "access_basis": args.access_basis,
        "source_system": args.source_system,
    }
    if args.kind == "citizen":
        token = mint_citizen_token(
            args.key_file, args.pid, scopes=args.scope, subject=args.subject, **options
        )
    else:
        if args.kind == "personnel":
            options |= {
                "hpr": args.hpr,
                "orgnr": args.orgnr,
                "child_orgnr": args.child_orgnr,
                "category": args.category,
            }
            default_subject = f"dev-hpr-{args.hpr}"
        else:
            default_subject = args.client_id
        token = mint_token(
            args.key_file, subject=args.subject or default_subject, scopes=args.scope, **options
        )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
