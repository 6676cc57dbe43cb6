"""The Postman collection (openapi/helsebro.postman_collection.json): `python -m app.postman` writes it.

A journey per domain, as an integrator walks it against a server that `make run` started (demo data, the
development issuer): a patient with a fødselsnummer (create, read, search, conditional create, update
with If-Match, history, a transaction, $everything, refusals), a referral from the GP through the
hospital's workflow steps to the citizen's own views (her referrals, her access log), a KITH
Henvisning through the message intake, a reconciliation of the patient's medication list, the core
journal (critical information recorded by the GP, `$summary` for the GP and for the patient, refused
without a care relation) and the pregnancy card (a pregnancy registered in one transaction, its derived
due date and plan, `$next`, a consultation, the card as a document and as HTML, a writer outside the
pilot refused). Every request checks its status, resource type and key fields.

Variables: `baseUrl` and one bearer token per actor (`token` a system client, `gpToken` the demo GP,
`hospitalToken` a doctor at the demo hospital, `citizenToken` the demo citizen Kari Nordmann); `make
postman` mints them with app.security.devtoken and runs the collection with newman. A test fails when
the committed file drifts from this module.
"""

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from app.postman.core_journal_journey import core_journal_journey
from app.postman.journeys import DEMO_FNR, DEMO_PATIENT, kith_journey, patient_journey, referral_journey
from app.postman.medication_journey import medication_journey
from app.postman.pregnancy_journey import pregnancy_journey

ROOT = Path(__file__).resolve().parents[2]
COLLECTION_PATH = ROOT / "openapi" / "helsebro.postman_collection.json"
# Mint the tokens the way `make postman` does (each an argument list of app.security.devtoken).
TOKENS = {
    "token": ["system", "--client-id", "postman", "--scope", "system/*.cruds"],
    "gpToken": ["personnel", "--hpr", "9100001", "--orgnr", "992000007", "--category", "LE"],
    "hospitalToken": ["personnel", "--hpr", "9100002", "--orgnr", "991000003", "--category", "LE"],
    "citizenToken": ["citizen", "--pid", DEMO_FNR, "--patient", DEMO_PATIENT],
}


def collection() -> dict[str, Any]:
    return {
        "info": {
            "name": "Helsebro FHIR API",
            "description": __doc__.split("\n\n", 1)[1].strip(),
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "variable": [
            {"key": "baseUrl", "value": "http://127.0.0.1:8080"},
            *({"key": name, "value": ""} for name in TOKENS),
        ],
        "item": [
            {"name": "1 Pasient: registrering, søk, versjoner, transaksjon", "item": patient_journey()},
            {"name": "2 Henvisning: fastlege, sykehus og innbygger", "item": referral_journey()},
            {"name": "3 KITH-melding: Henvisning inn og ut", "item": kith_journey()},
            {"name": "4 Legemiddelliste: samstemming", "item": medication_journey()},
            {
                "name": "5 Kjernejournal: kritisk informasjon og pasientsammendrag",
                "item": core_journal_journey(),
            },
            {
                "name": "6 Helsekort for gravide: svangerskap, plan, konsultasjon og kort",
                "item": pregnancy_journey(),
            },
        ],
    }


def render() -> bytes:
    return orjson.dumps(collection(), option=orjson.OPT_INDENT_2) + b"\n"


def run(base_url: str) -> int:
    """Run the collection with newman (node_modules, from package-lock.json) against a running server that
    trusts the development issuer, with tokens minted from the same key file."""
    newman = ROOT / "node_modules" / ".bin" / "newman"
    if not newman.exists():
        print("newman not found: run `npm ci` (make postman does)", file=sys.stderr)
        return 2
    args = ["run", str(COLLECTION_PATH), "--env-var", f"baseUrl={base_url.rstrip('/')}", "--bail", "failure"]
    for name, token_args in TOKENS.items():
        minted = subprocess.run(
            [sys.executable, "-m", "app.security.devtoken", *token_args],
            capture_output=True,
            text=True,
            check=True,
        )
        args += ["--env-var", f"{name}={minted.stdout.strip()}"]
    return subprocess.run([str(newman), *args], check=False).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.postman", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("write", help=f"write {COLLECTION_PATH.relative_to(ROOT)}")
    runner = sub.add_parser("run", help="run it with newman against a running server")
    runner.add_argument("--url", default="http://127.0.0.1:8080", help="the server's base URL")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.url)
    COLLECTION_PATH.write_bytes(render())
    print(f"wrote {COLLECTION_PATH}")
    return 0
