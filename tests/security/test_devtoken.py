"""The development issuer: its key file, minted tokens, and the `python -m app.security.devtoken` CLI."""

from __future__ import annotations

import asyncio
import functools
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.security.devtoken import dev_jwks, load_or_create_key, main, mint_token
from app.security.tokens import TokenVerifier, principal_from_claims
from tests.databases import ROOT
from tests.security.helpers import auth_header, token_parts


def verifier(key_file: Path) -> TokenVerifier:
    return TokenVerifier(Settings(auth_dev_issuer=True, auth_dev_key_file=str(key_file)))


async def test_cli_prints_a_token_the_server_accepts(
    dev_key_file: Path, secure_client: httpx.AsyncClient
) -> None:
    # Defaults come from Settings, i.e. the environment, as for the server (AUTH_DEV_KEY_FILE here).
    env = {**os.environ, "AUTH_DEV_KEY_FILE": str(dev_key_file)}
    command = [sys.executable, "-m", "app.security.devtoken", "personnel", "--hpr", "9100001"]
    command += ["--orgnr", "991000003", "--child-orgnr", "992000007"]
    run = functools.partial(subprocess.run, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result = await asyncio.to_thread(run, command)
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # the token only, so TOKEN=$(...) works

    claims = await verifier(dev_key_file).verify(token)
    principal = principal_from_claims(claims, None)
    assert principal.kind == "personnel"
    assert (principal.hpr, principal.orgnr, principal.child_orgnr) == ("9100001", "991000003", "992000007")
    assert principal.category == "LE"
    assert principal.scopes.raw == ("user/*.cruds",)

    response = await secure_client.get("/Patient/x", headers=auth_header(token))
    assert response.status_code != 401


@pytest.mark.parametrize(
    ("argv", "kind", "scopes"),
    [
        (["citizen", "--pid", "13897250017"], "citizen", ("patient/*.rs",)),
        (["system", "--client-id", "lab-system"], "system", ("system/*.cruds",)),
        (
            ["system", "--client-id", "lab", "--scope", "system/Observation.cr system/Patient.rs"],
            "system",
            ("system/Observation.cr", "system/Patient.rs"),
        ),
    ],
)
async def test_cli_presets(
    dev_key_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    kind: str,
    scopes: tuple[str, ...],
) -> None:
    assert main([*argv, "--key-file", str(dev_key_file), "--lifetime", "120"]) == 0
    token = capsys.readouterr().out.strip()
    claims = await verifier(dev_key_file).verify(token)
    assert claims["exp"] - claims["iat"] == 120
    principal = principal_from_claims(claims, None)
    assert principal.kind == kind
    assert principal.scopes.raw == scopes
    if kind == "citizen":
        assert principal.pid == "13897250017"
        assert "13897250017" not in principal.subject  # the sub is a pseudonym, not the fødselsnummer


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "issuer-key.json"
    key = load_or_create_key(path)
    assert key.is_private
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path).kid == key.kid
    jwks = dev_jwks(path)
    assert [k["kid"] for k in jwks["keys"]] == [key.kid]
    assert "d" not in jwks["keys"][0]  # public only
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_mint_header_and_removable_claims(dev_key_file: Path) -> None:
    token = mint_token(dev_key_file, subject="s", scopes="", extra_claims={"exp": None, "x": "y"})
    header, claims = token_parts(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == load_or_create_key(dev_key_file).kid
    assert "exp" not in claims
    assert claims["x"] == "y"


def test_help_names_the_defaults_and_the_token_for_test_harnesses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    assert "should use a system client" in top
    assert "python -m app.security.devtoken system --client-id" in top
    with pytest.raises(SystemExit):
        main(["system", "--help"])
    system = capsys.readouterr().out
    assert "(default: system/*.cruds)" in system
    assert "(default: 3600)" in system
