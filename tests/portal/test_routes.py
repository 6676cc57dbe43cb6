"""The portal's routes over HTTP, on SQLite and PostgreSQL: the page and its files are served without a
token, and the development sign-in mints a citizen token for a demo citizen only while the dev issuer is
trusted (404 otherwise). The token it mints is an ordinary citizen token: it reads the citizen's own
record through the API, under the access policy and the audit, and nothing of anyone else's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.demo import demo_resources, load
from app.portal.citizens import demo_citizen, demo_citizens
from app.portal.routes import ASSETS, PORTAL_CLIENT_ID, PORTAL_SCOPES, PUBLIC_PATHS, TOKEN_SECONDS
from app.resources.core_journal.classify import source_references
from app.resources.core_journal.codes import is_entry
from app.resources.no_basis.identifiers import FNR_SYSTEM
from app.resources.pregnancy_card.codes import CARD_SYSTEM
from app.security.devtoken import CLAIM_PID, citizen_subject
from tests.conftest import app_client
from tests.databases import TestDatabase
from tests.security.helpers import auth_header, token_parts

SIGN_IN = "/portal/dev-login"


async def sign_in(http: httpx.AsyncClient, patient_id: str) -> dict[str, Any]:
    response = await http.post(SIGN_IN, json={"patient": patient_id})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def test_the_demo_citizens_are_the_demo_patients() -> None:
    patients = [r for r in demo_resources() if r["resourceType"] == "Patient"]
    assert [c.patient_id for c in demo_citizens()] == [p["id"] for p in patients]
    for citizen, patient in zip(demo_citizens(), patients, strict=True):
        assert citizen.pid == next(i["value"] for i in patient["identifier"] if i["system"] == FNR_SYSTEM)
        assert citizen.birth_date == patient["birthDate"]
        assert patient["name"][0]["family"] in citizen.name
    assert demo_citizen("kari") is not None
    assert demo_citizen("nobody") is None
    assert "pid" not in str(demo_citizens()[0].public())


async def test_the_page_and_its_files_need_no_token(secure_client: httpx.AsyncClient) -> None:
    page = await secure_client.get("/portal")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="nb">' in page.text
    csp = page.headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert (await secure_client.get("/portal/")).text == page.text
    for name in (
        "portal.js",
        "portal.css",
        "panels.json",
        "corejournal.js",
        "medications.js",
        "registers.js",
    ):
        assert name in ASSETS
        served = await secure_client.get(f"/portal/{name}")
        assert served.status_code == 200, name
        assert served.content == ASSETS[name].read_bytes()
    assert (
        (await secure_client.get("/portal/portal.js")).headers["content-type"].startswith("text/javascript")
    )


async def test_only_the_portal_files_are_public(secure_client: httpx.AsyncClient, mint: Any) -> None:
    # The public paths are exact: another name under /portal needs a token like any path, and with one
    # it is a 404 (no path from a request reaches the file system).
    assert all(p == "/portal" or p.startswith("/portal/") for p in PUBLIC_PATHS)
    assert (await secure_client.get("/portal/routes.py")).status_code == 401
    system = auth_header(mint(subject="t", client_id="t", scopes="system/*.cruds"))
    for path in ("/portal/routes.py", "/portal/..%2Froutes.py", "/portal/index.htm"):
        missing = await secure_client.get(path, headers=system)
        assert missing.status_code == 404, path
        assert missing.json()["resourceType"] == "OperationOutcome"
    assert (await secure_client.get("/Patient")).status_code == 401  # the FHIR API still needs a token


async def test_the_portal_routes_are_not_in_the_openapi_document(secure_client: httpx.AsyncClient) -> None:
    document = (await secure_client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/portal")]


async def test_the_sign_in_lists_the_demo_citizens_without_their_numbers(
    secure_client: httpx.AsyncClient,
) -> None:
    listed = await secure_client.get("/portal/citizens")
    assert listed.status_code == 200
    assert listed.json() == [c.public() for c in demo_citizens()]
    assert all(c.pid not in listed.text for c in demo_citizens())


async def test_a_demo_citizen_token_reads_only_that_citizens_own_record(
    secure_app: FastAPI, secure_client: httpx.AsyncClient
) -> None:
    await load(secure_app.state.fhir)
    grant = await sign_in(secure_client, "kari")
    kari = demo_citizen("kari")
    assert kari is not None
    assert grant["token_type"] == "Bearer"
    assert grant["expires_in"] == TOKEN_SECONDS
    assert (grant["patient"], grant["scope"]) == ("kari", "patient/*.rs patient/Communication.c")
    assert grant["scope"] == PORTAL_SCOPES
    _, claims = token_parts(grant["access_token"])
    # the token devtoken's `citizen` kind mints, for the portal's client and the SMART launch patient
    assert claims[CLAIM_PID] == kari.pid
    assert claims["sub"] == citizen_subject(kari.pid)
    assert (claims["client_id"], claims["patient"], claims["name"]) == (PORTAL_CLIENT_ID, "kari", kari.name)
    assert claims["iss"] == "helsebro-dev"
    citizen = auth_header(grant["access_token"])

    own = await secure_client.get("/Patient/kari", headers=citizen)
    assert own.status_code == 200, own.text
    assert own.json()["identifier"][0]["value"] == kari.pid
    allergies = (await secure_client.get("/AllergyIntolerance", headers=citizen)).json()
    found = [e["resource"] for e in allergies["entry"] if e["search"]["mode"] == "match"]
    # her allergy, and the core-journal entry the pack recorded from it (it is critical)
    assert [a["id"] for a in found if not is_entry(a)] == ["penicillin-kari"]
    assert [source_references(a) for a in found if is_entry(a)] == [{"AllergyIntolerance/penicillin-kari"}]
    for other in ("ase", "oyvind"):
        refused = await secure_client.get(f"/Patient/{other}", headers=citizen)
        assert refused.status_code == 403, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome"
    assert (await secure_client.get("/Condition/diabetes-ase", headers=citizen)).status_code == 403
    everyone = (await secure_client.get("/Patient", headers=citizen)).json()
    assert [e["resource"]["id"] for e in everyone["entry"] if e["search"]["mode"] == "match"] == ["kari"]
    # Reads, and creating a Communication (her notes on the pregnancy card): no other write.
    written = await secure_client.put("/Patient/kari", json=own.json(), headers=citizen)
    assert written.status_code == 403
    question = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": CARD_SYSTEM, "code": "sporsmal"}]}],
        "subject": {"reference": "Patient/kari"},
        "sender": {"reference": "Patient/kari"},
        "payload": [{"contentString": "Kan jeg trene som før?"}],
    }
    noted = await secure_client.post("/Communication", json=question, headers=citizen)
    assert noted.status_code == 201, noted.text
    about_ase = {**question, "subject": {"reference": "Patient/ase"}, "sender": {"reference": "Patient/ase"}}
    assert (await secure_client.post("/Communication", json=about_ase, headers=citizen)).status_code == 403
    measured = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Vekt"},
        "subject": {"reference": "Patient/kari"},
    }
    assert (await secure_client.post("/Observation", json=measured, headers=citizen)).status_code == 403

    # The citizen's own reads are in her access log, under the portal's client; another's log is not hers.
    log = await secure_client.get("/AuditEvent", params={"patient": "Patient/kari"}, headers=citizen)
    assert log.status_code == 200, log.text
    events = [e["resource"] for e in log.json()["entry"] if e["search"]["mode"] == "match"]
    mine = [e for e in events if e["agent"][0]["who"].get("identifier", {}).get("value") == kari.pid]
    assert len(mine) >= 3  # her Patient, her allergies, the Patient search (and the refusals)
    for event in mine:
        assert event["agent"][0]["who"]["display"] == kari.name
        client = {"system": "urn:helsebro:client-id", "value": PORTAL_CLIENT_ID}
        assert client in [a["who"].get("identifier") for a in event["agent"]]
    theirs = await secure_client.get("/AuditEvent", params={"patient": "Patient/ase"}, headers=citizen)
    assert theirs.status_code in (200, 403)
    assert not [e for e in theirs.json().get("entry", []) if e["search"]["mode"] == "match"]


async def test_the_panels_operations_answer_the_citizen_token_for_her_own_record_only(
    secure_app: FastAPI, secure_client: httpx.AsyncClient
) -> None:
    # What "Min kjernejournal" and "Mine legemidler" call, with the token the sign-in mints.
    await load(secure_app.state.fhir)
    citizen = auth_header((await sign_in(secure_client, "kari"))["access_token"])
    summary = await secure_client.get("/Patient/kari/$summary", headers=citizen)
    assert summary.status_code == 200, summary.text
    document = summary.json()
    assert document["type"] == "document"
    entries = [e["resource"] for e in document["entry"] if is_entry(e["resource"])]
    assert [source_references(e) for e in entries] == [{"AllergyIntolerance/penicillin-kari"}]
    medicines = await secure_client.get("/Patient/kari/$medication-list", headers=citizen)
    assert medicines.status_code == 200, medicines.text
    assert medicines.json()["entry"][0]["resource"]["resourceType"] == "List"
    for operation in ("$summary", "$medication-list"):
        refused = await secure_client.get(f"/Patient/ase/{operation}", headers=citizen)
        assert refused.status_code == 403, (operation, refused.text)


async def test_the_sign_in_takes_only_a_demo_citizen(secure_client: httpx.AsyncClient) -> None:
    for body in ({"patient": "nobody"}, {"patient": 7}, {}, ["kari"]):
        refused = await secure_client.post(SIGN_IN, json=body)
        assert refused.status_code == 400, body
        assert refused.json()["resourceType"] == "OperationOutcome"
    garbled = await secure_client.post(SIGN_IN, content=b"patient=kari")
    assert garbled.status_code == 400
    assert (await secure_client.get(SIGN_IN)).status_code == 405


@pytest.fixture(params=[{"auth_dev_issuer": False}, {"auth_mode": "off", "auth_dev_issuer": True}])
async def without_dev_issuer(
    request: pytest.FixtureRequest,
    backend: str,
    session_databases: dict[str, TestDatabase],
    dev_key_file: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    settings: dict[str, Any] = {"auth_mode": "jwt", "auth_dev_key_file": str(dev_key_file), **request.param}
    async with app_client(session_databases[backend], **settings) as (http, _app):
        yield http


async def test_without_the_dev_issuer_there_is_no_sign_in(without_dev_issuer: httpx.AsyncClient) -> None:
    # With authentication off there is no citizen to be either: a token would not limit anything.
    for method, path in (("POST", SIGN_IN), ("GET", "/portal/citizens")):
        response = await without_dev_issuer.request(method, path, json={"patient": "kari"})
        assert response.status_code == 404, (method, path)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "not-found"
    page = await without_dev_issuer.get("/portal")  # the page itself says that sign-in is unavailable
    assert page.status_code == 200
    assert "AUTH_DEV_ISSUER" in page.text
