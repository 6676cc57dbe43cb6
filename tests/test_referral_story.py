"""The referral story end to end through the HTTP API, on SQLite and PostgreSQL, with authentication on
(JWT, dev issuer), the common intake's routing rules loaded and the subscription delivery worker running.

A GP's system sends a KITH Henvisning 2.0 to the hospital trust's common intake; the intake receives it and
it is routed by the rules to the DPS, which receives and assesses it; the patient sees the decision in her
list of referrals; the GP's system is notified of every Task change, also of those made while its
endpoint was down; and the patient's reads are in the audit trail.

How the rules see the intake: the KITH adapter creates the receiving unit's Organization conditionally,
keyed by its HER-id. The trust has registered its intake as `Organization/intake` with the HER-id GPs
address referrals to, so the conditional create finds it, Task.owner is `Organization/intake`, and the
example rule set (routing-example.json) applies unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.kith.apprec import AppRecStatus, parse_apprec
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import FNR_SYSTEM, HERID_SYSTEM, ORGNR_SYSTEM, synthetic_fnr
from app.resources.referrals.codes import Output
from app.resources.referrals.taskjson import OSLO, output
from app.security.devtoken import mint_token
from tests.adapters.kith.conftest import fixture_bytes
from tests.conftest import app_client
from tests.databases import TestDatabase
from tests.fhir.subscriptions.conftest import (
    FAST,
    Receiver,
    all_delivered,
    eventually,
    outbox,
    subscription,
)
from tests.resources.referrals.test_route_http import EXAMPLE
from tests.resources.referrals.test_views_http import parameters, referrals
from tests.security.helpers import auth_header
from tests.security.scenario import orgnr

PATIENT_FNR = "14835712347"  # Åse Marit Øvrebø, born 1957: the patient of the fixture message
TRUST_ORGNR, TRUST_HER = "976543211", "8123500"  # Helse Testfjord HF, the message's receiver
INTAKE_HER = "8123501"  # the receiving unit in the message: the trust's common intake
INTAKE_ORGNR, DPS_ORGNR = orgnr("97400011"), orgnr("97400022")
INTERNAL = "INTERN MERKNAD"  # the workers' note text, never for the patient

# The fixture message, to the common intake for mental health care, with an ICD-10 F / ICPC-2 P diagnosis.
MESSAGE_CHANGES = (
    (b"Revmatologisk poliklinikk", b"Felles henvisningsmottak psykisk helsevern"),
    (
        b'V="M069" S="2.16.578.1.12.4.1.1.7110" DN="Revmatoid artritt, uspesifisert"',
        b'V="F321" S="2.16.578.1.12.4.1.1.7110" DN="Moderat depressiv episode"',
    ),
    (
        b'V="L88" S="2.16.578.1.12.4.1.1.7170" DN="Reumatoid artritt/reumatisk sykdom"',
        b'V="P76" S="2.16.578.1.12.4.1.1.7170" DN="Depressiv lidelse"',
    ),
)


def henvisning() -> bytes:
    data = fixture_bytes("henvisning_v2_nytilstand.xml")
    for old, new in MESSAGE_CHANGES:
        assert data.count(old) == 1, old
        data = data.replace(old, new)
    return data


def organisation(res_id: str, name: str, number: str, her: str | None = None) -> dict[str, Any]:
    identifier = [{"system": ORGNR_SYSTEM, "value": number}]
    if her is not None:
        identifier.append({"system": HERID_SYSTEM, "value": her})
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": res_id,
        "identifier": identifier,
        "name": name,
    }
    if res_id != "helse-testfjord":
        org["partOf"] = {"reference": "Organization/helse-testfjord"}
    return org


@dataclass
class Story:
    http: httpx.AsyncClient
    app: FastAPI
    receiver: Receiver  # the GP system's rest-hook endpoint
    mint: Callable[..., str]

    def system(self, client_id: str, **claims: Any) -> dict[str, str]:
        return auth_header(
            self.mint(subject=client_id, client_id=client_id, scopes="system/*.cruds", **claims)
        )

    def personnel(self, hpr: str, unit_orgnr: str) -> dict[str, str]:
        """A doctor in one unit of the trust (HelseID-style claims: legal entity and sub-unit)."""
        claims = {"hpr": hpr, "orgnr": TRUST_ORGNR, "child_orgnr": unit_orgnr, "category": "LE"}
        return auth_header(
            self.mint(subject=f"hpr-{hpr}", scopes="user/*.cruds", name=f"Lege {hpr}", **claims)
        )

    async def step(self, task_id: str, action: str, who: dict[str, str], **values: Any) -> httpx.Response:
        return await self.http.post(f"/Task/{task_id}/${action}", json=parameters(**values), headers=who)

    async def get(self, path: str, who: dict[str, str]) -> dict[str, Any]:
        response = await self.http.get(path, headers=who)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def matches(self, query: str, who: dict[str, str]) -> list[dict[str, Any]]:
        bundle = await self.get(query, who)
        return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.fixture
async def story(
    backend: str, session_databases: dict[str, TestDatabase], dev_key_file: Path
) -> AsyncIterator[Story]:
    """The secured app with the example routing rules and fast subscription retries, its lifespan (and so
    the delivery worker) running, and the GP system's endpoint: a real HTTP server on 127.0.0.1."""
    settings: dict[str, object] = {
        "auth_mode": "jwt",
        "auth_dev_issuer": True,
        "auth_dev_key_file": str(dev_key_file),
        "referral_routing_rules": str(EXAMPLE),
        **FAST,
    }
    receiver = Receiver()
    receiver.start()
    try:
        async with (
            app_client(session_databases[backend], **settings) as (http, app),
            app.router.lifespan_context(app),
        ):
            yield Story(http, app, receiver, functools.partial(mint_token, dev_key_file))
    finally:
        receiver.stop()


async def test_referral_from_gp_to_dps_seen_by_the_patient_notified_and_audited(story: Story) -> None:
    http = story.http
    admin, gp_system = story.system("helse-testfjord-admin"), story.system("fjordblikk-epj")
    intake, dps = story.personnel("4000004", INTAKE_ORGNR), story.personnel("5000005", DPS_ORGNR)

    # 1. Setup. The trust's organisations (the intake with the HER-id GPs address it by) and another
    # patient; the GP's system subscribes to referral Tasks (only system clients may).
    for resource in (
        organisation("helse-testfjord", "Helse Testfjord HF", TRUST_ORGNR, TRUST_HER),
        organisation("intake", "Felles henvisningsmottak psykisk helsevern", INTAKE_ORGNR, INTAKE_HER),
        organisation("dps-fjordby", "Fjordby DPS", DPS_ORGNR),
        {
            "resourceType": "Patient",
            "id": "neighbour",
            "identifier": [{"system": FNR_SYSTEM, "value": synthetic_fnr(30, 11, 1979, 111)}],
        },
    ):
        url = f"/{resource['resourceType']}/{resource['id']}"
        assert (await http.put(url, json=resource, headers=admin)).status_code == 201
    hook = subscription(story.receiver.url, criteria="Task?focus:missing=false")
    assert (await http.post("/Subscription", json=hook, headers=intake)).status_code == 403
    registered = await http.post("/Subscription", json=hook, headers=gp_system)
    assert registered.status_code == 201, registered.text
    assert registered.json()["status"] == "active"

    # 2. The GP's system sends the Henvisning and gets a positive AppRec; its endpoint hears of the Task.
    xml = {**gp_system, "Content-Type": "application/xml"}
    sent = await http.post("/$kith-message", content=henvisning(), headers=xml)
    assert sent.status_code == 200, sent.text
    assert parse_apprec(parse_xml(sent.content)).status is AppRecStatus.OK
    (created,) = await story.receiver.wait_for(1)

    # 3. The intake finds the new referral addressed to it (its Task gives it a care relation).
    (task,) = await story.matches("/Task?owner=Organization/intake&status=requested", intake)
    task_id, patient_id = task["id"], task["for"]["reference"].removeprefix("Patient/")
    assert created.path == f"/hook/Task/{task_id}"
    patient = await story.get(f"/Patient/{patient_id}", intake)
    assert patient["identifier"][0]["value"] == PATIENT_FNR

    # The GP's endpoint is down during steps 4 and 5: the notifications wait in the outbox.
    story.receiver.stop()

    # 4. The intake receives the referral; the rules route it to the DPS (an adult with an F diagnosis).
    received = await story.step(task_id, "receive", intake, note=("String", f"{INTERNAL}: mottak"))
    assert received.status_code == 200, received.text
    # The intake worker routes what it has received; forwarding ends the intake's own care relation with
    # the patient (the Task is no longer theirs), which must not undo the step itself.
    routed = await story.step(task_id, "route", intake)
    assert routed.status_code == 200, routed.text
    assert routed.json()["owner"] == {"reference": "Organization/dps-fjordby", "display": "Fjordby DPS"}
    assert output(routed.json(), Output.ROUTING_RULE) == "dps-fjordby"

    # 5. The DPS receives and assesses it: a right to necessary care, to start within six weeks.
    today = datetime.now(OSLO).date()
    deadline = today + timedelta(weeks=6)
    received = await story.step(task_id, "receive", dps, note=("String", f"{INTERNAL}: DPS"))
    assert received.status_code == 200, received.text
    assessed = await story.step(
        task_id,
        "assess",
        dps,
        decision=("Code", "rett"),
        priority=("Code", "ordinaer"),
        careDeadline=("Date", deadline.isoformat()),
        note=("String", f"{INTERNAL}: vurdering"),
    )
    assert assessed.status_code == 200, assessed.text
    assert assessed.json()["meta"]["versionId"] == "5"

    async def retried_while_down() -> bool:
        rows = await outbox(story.app)
        return len(rows) == 5 and rows[1][3] >= 2  # the first waiting notification has failed twice

    await eventually(retried_while_down)
    assert [state for _, _, state, _ in await outbox(story.app)] == ["delivered"] + ["pending"] * 4

    # 6. The patient sees the decision and its deadline in her list, without the workers' notes.
    citizen = auth_header(
        story.mint(subject="ase", scopes="patient/*.rs", pid=PATIENT_FNR, patient=patient_id)
    )
    listed = await http.get(f"/Patient/{patient_id}/$referrals", headers=citizen)
    assert listed.status_code == 200, listed.text
    assert INTERNAL not in listed.text
    (referral,) = referrals(listed.json())
    assert referral["task"] == {"reference": f"Task/{task_id}"}
    assert referral["state"] == "assessed"
    assert referral["organisation"] == "Fjordby DPS"
    assert (referral["received"], referral["assessed"], referral["deadline"]) == (
        today.isoformat(),
        today.isoformat(),
        deadline.isoformat(),
    )
    assert "vurdert" in referral["text"]["nb"]
    assert f"senest {deadline:%d.%m.%Y}" in referral["text"]["nb"]
    own = await http.get("/Patient/$referrals", headers=citizen)  # the patient of the token's launch context
    assert own.status_code == 200, own.text
    assert own.json() == listed.json()
    assert (await http.get("/Patient/neighbour/$referrals", headers=citizen)).status_code == 403
    # The portal list is plain status; the patient's own FHIR access to her Task is her right of access
    # to information about herself (pasient- og brukerrettighetsloven § 5-1), notes included.
    direct = await http.get(f"/Task/{task_id}", headers=citizen)
    assert direct.status_code == 200, direct.text
    assert INTERNAL in direct.text

    # 7. The endpoint is up again: every Task change arrives, once and in order.
    story.receiver.start()
    notified = await story.receiver.wait_for(5)
    await eventually(lambda: all_delivered(story.app, 5))
    assert [(r.method, r.path) for r in notified] == [("PUT", f"/hook/Task/{task_id}")] * 5
    versions = [r.json() for r in notified]
    assert [(t["meta"]["versionId"], t["status"], t["owner"]["reference"]) for t in versions] == [
        ("1", "requested", "Organization/intake"),
        ("2", "received", "Organization/intake"),
        ("3", "requested", "Organization/dps-fjordby"),
        ("4", "received", "Organization/dps-fjordby"),
        ("5", "received", "Organization/dps-fjordby"),
    ]

    # 8. The audit trail has every read of the patient (the searches behind both lists, the Task read),
    # each as hers and by her, and the refused look at her neighbour's referrals.
    reads = await story.matches(f"/AuditEvent?patient=Patient/{patient_id}&altid=ase&_count=200", admin)
    assert {(e["outcome"], e["agent"][0]["who"]["identifier"]["value"]) for e in reads} == {
        ("0", PATIENT_FNR)
    }
    actions: dict[str, set[str]] = {}  # request id -> the audited actions
    for event in reads:
        actions.setdefault(_request_id(event), set()).add(event["action"])
    assert actions == {
        listed.headers["x-request-id"]: {"E"},
        own.headers["x-request-id"]: {"E"},
        direct.headers["x-request-id"]: {"R"},
    }
    refusals = await story.matches("/AuditEvent?patient=Patient/neighbour&altid=ase&outcome=4", admin)
    assert len(refusals) == 1


def _request_id(event: dict[str, Any]) -> str:
    (value,) = [
        e["what"]["identifier"]["value"] for e in event["entity"] if "identifier" in e.get("what", {})
    ]
    return str(value)
