"""The referral read operations through the REST API, on SQLite and PostgreSQL: the citizen's list of
referrals (states and dates driven by the real workflow operations, no internal text) and the waiting-time
figures per organisation (Tasks written with fixed dates through plain, transition-checked PUTs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from app.fhir.interactions import search as search_ix
from app.resources.no_basis.identifiers import FNR_SYSTEM
from app.resources.referrals import views
from app.resources.referrals.codes import REFERRAL_CATEGORY, Decision
from app.resources.referrals.taskjson import OSLO
from app.resources.referrals.workflow import assess, receive
from tests.fhir.bundles import put_each
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.referrals.builders import REFERRAL_TASK_CODE
from tests.security.helpers import auth_header
from tests.security.scenario import KARI_FNR, NILS_FNR, OTHER_CLINIC_ORGNR

INTERNAL = "INTERN MERKNAD"  # note text that must never reach the patient
HOSPITAL = {"reference": "Organization/hospital", "display": "Fjordby sykehus"}
HOSPITAL_A = {"reference": "Organization/hospital-a", "display": "Sykehuset Aust"}
HOSPITAL_B = {"reference": "Organization/hospital-b", "display": "Sykehuset Vest"}
# The organisations the referrals name: they must exist (referential integrity).
ORGANIZATIONS = [
    {"resourceType": "Organization", "id": ref["reference"].split("/")[1], "name": ref["display"]}
    for ref in (HOSPITAL, HOSPITAL_A, HOSPITAL_B)
]


# -- building referrals ---------------------------------------------------------------------------------
def service_request(sr_id: str, patient: str, authored: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": sr_id,
        "status": "active",
        "intent": "order",
        "category": [{"coding": [REFERRAL_CATEGORY]}],
        "subject": {"reference": f"Patient/{patient}"},
        "performer": [HOSPITAL],
        "authoredOn": authored,
    }


def new_task(task_id: str, sr_id: str, patient: str, owner: dict[str, str], authored: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": "requested",
        "intent": "order",
        "code": REFERRAL_TASK_CODE,
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": {"reference": f"Patient/{patient}"},
        "owner": owner,
        "authoredOn": authored,
    }


def patient(patient_id: str, fnr: str) -> dict[str, Any]:
    identifier = [{"system": FNR_SYSTEM, "value": fnr}]
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": identifier,
        "name": [{"family": "Test"}],
    }


async def put_all(http: httpx.AsyncClient, resources: list[dict[str, Any]], **headers: str) -> None:
    bundle = put_each(*resources)
    response = await http.post("/", content=orjson.dumps(bundle), headers={**FHIR_JSON, **headers})
    assert response.status_code == 200, response.text


async def referral(
    http: httpx.AsyncClient, sr_id: str, patient_id: str, authored: str, with_task: bool = True
) -> None:
    resources = [service_request(sr_id, patient_id, authored)]
    if with_task:
        resources.append(new_task(f"t-{sr_id}", sr_id, patient_id, HOSPITAL, authored))
    await put_all(http, resources)


def parameters(**values: tuple[str, Any]) -> dict[str, Any]:
    """parameters(name=(FHIR type, value), ...)"""
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": n, f"value{kind}": v} for n, (kind, v) in values.items()],
    }


async def step(
    http: httpx.AsyncClient, task_id: str, action: str, body: dict[str, Any] | None = None, **headers: str
) -> None:
    response = await http.post(
        f"/Task/{task_id}/${action}",
        content=orjson.dumps(body or parameters()),
        headers={**FHIR_JSON, **headers},
    )
    assert response.status_code == 200, response.text


def flat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameter parts as name -> value (nested parts as nested dicts)."""
    out: dict[str, Any] = {}
    for part in parts:
        if "part" in part:
            out[part["name"]] = flat(part["part"])
        else:
            (value,) = [v for k, v in part.items() if k.startswith("value")]
            out[part["name"]] = value
    return out


def referrals(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert body["resourceType"] == "Parameters"
    assert all(p["name"] == "referral" for p in body.get("parameter", []))
    return [flat(p["part"]) for p in body.get("parameter", [])]


# -- the citizen's referrals ----------------------------------------------------------------------------
async def test_citizen_view_states_dates_order_and_no_internal_text(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small pages and chunks, so the paging and chunking paths run with a handful of referrals
    monkeypatch.setattr(search_ix, "SEARCH_ALL_PAGE_SIZE", 2)
    monkeypatch.setattr(views, "REFS_PER_SEARCH", 2)
    await put_all(client, [*ORGANIZATIONS, patient("pat-a", KARI_FNR), patient("pat-b", NILS_FNR)])
    today = datetime.now(OSLO).date()
    deadline = (today + timedelta(days=60)).isoformat()
    note = ("String", f"{INTERNAL}: ikke for pasienten")

    await referral(client, "sr-sent", "pat-a", "2026-01-01T09:00:00+01:00", with_task=False)
    await referral(client, "sr-assessed", "pat-a", "2026-01-03T09:00:00+01:00")
    await step(client, "t-sr-assessed", "receive", parameters(note=note))
    await step(
        client,
        "t-sr-assessed",
        "assess",
        parameters(
            decision=("Code", "rett"),
            priority=("Code", "ordinaer"),
            careDeadline=("Date", deadline),
            note=note,
        ),
    )

    await referral(client, "sr-booked", "pat-a", "2026-01-05T09:00:00+01:00")
    start = datetime.combine(today + timedelta(days=30), datetime.min.time().replace(hour=10), OSLO)
    appointment = {
        "resourceType": "Appointment",
        "id": "appt",
        "status": "booked",
        "description": f"{INTERNAL}: beskrivelse",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "participant": [{"actor": {"reference": "Patient/pat-a"}, "status": "accepted"}],
    }
    await put_all(client, [appointment])
    await step(client, "t-sr-booked", "receive")
    rett = parameters(decision=("Code", "rett"), priority=("Code", "hoy"), careDeadline=("Date", deadline))
    await step(client, "t-sr-booked", "assess", rett)
    await step(client, "t-sr-booked", "accept", parameters(note=note))
    booking = parameters(
        appointment=("Reference", {"reference": "Appointment/appt"}), start=("DateTime", start.isoformat())
    )
    await step(client, "t-sr-booked", "give-appointment", booking)

    await referral(client, "sr-conversation", "pat-a", "2026-01-07T09:00:00+01:00")
    await step(client, "t-sr-conversation", "receive")
    await step(
        client, "t-sr-conversation", "assess", parameters(decision=("Code", "behov-for-vurderingssamtale"))
    )
    window = {"earliest": ("Date", (today + timedelta(days=3)).isoformat())}
    window["latest"] = ("Date", (today + timedelta(days=20)).isoformat())
    await step(client, "t-sr-conversation", "offer-assessment-conversation", parameters(**window, note=note))

    await referral(client, "sr-rejected", "pat-a", "2026-01-09T09:00:00+01:00")
    await step(client, "t-sr-rejected", "receive")
    await step(client, "t-sr-rejected", "assess", parameters(decision=("Code", "ikke-rett"), note=note))
    rejection = parameters(reason=("Code", "ikke-behov"), text=("String", f"{INTERNAL}: avslag"))
    await step(client, "t-sr-rejected", "reject", rejection)

    await referral(client, "sr-other", "pat-b", "2026-01-11T09:00:00+01:00")  # another patient's
    await step(client, "t-sr-other", "receive")

    response = await client.get("/Patient/pat-a/$referrals")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert INTERNAL not in response.text  # Task.note, statusReason.text, Appointment.description
    found = referrals(response.json())
    assert [r["serviceRequest"]["reference"] for r in found] == [
        "ServiceRequest/sr-rejected",
        "ServiceRequest/sr-conversation",
        "ServiceRequest/sr-booked",
        "ServiceRequest/sr-assessed",
        "ServiceRequest/sr-sent",
    ]  # newest first; sr-other (pat-b) is not there
    rejected, conversation, booked, assessed, sent = found

    assert sent["state"] == "sent"
    assert "task" not in sent
    assert sent["sent"] == "2026-01-01"
    assert sent["organisation"] == "Fjordby sykehus"
    assert set(sent["text"]) == {"nb", "en"}

    assert assessed["state"] == "assessed"
    assert assessed["task"] == {"reference": "Task/t-sr-assessed"}
    assert (assessed["received"], assessed["assessed"], assessed["deadline"]) == (
        today.isoformat(),
        today.isoformat(),
        deadline,
    )
    assert "rett til nødvendig helsehjelp" in assessed["text"]["nb"]

    assert booked["state"] == "appointment"
    assert datetime.fromisoformat(booked["appointment"]) == start
    assert booked["deadline"] == deadline

    assert conversation["state"] == "received"
    assert "vurderingssamtale" in conversation["text"]["nb"]
    assert "assessed" not in conversation
    assert "deadline" not in conversation

    assert rejected["state"] == "rejected"
    assert set(rejected["reason"]) == {"nb", "en"}
    assert "deadline" not in rejected

    other = referrals((await client.get("/Patient/pat-b/$referrals")).json())
    assert [(r["serviceRequest"]["reference"], r["state"]) for r in other] == [
        ("ServiceRequest/sr-other", "received")
    ]
    nobody = await client.get("/Patient/nobody/$referrals")
    assert nobody.status_code == 200
    assert referrals(nobody.json()) == []


async def test_own_referrals_need_a_patient_context(client: httpx.AsyncClient) -> None:
    response = await client.get("/Patient/$referrals")  # authentication off: no token, no patient
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


# -- waiting times --------------------------------------------------------------------------------------
def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, datetime.min.time().replace(hour=hour), OSLO)


async def put(http: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    url = f"/{resource['resourceType']}/{resource['id']}"
    response = await http.put(url, content=orjson.dumps(resource), headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text
    stored: dict[str, Any] = response.json()
    return stored


async def task_with_dates(
    http: httpx.AsyncClient, task_id: str, owner: dict[str, str], received: date, assessed: date | None
) -> dict[str, Any]:
    """A referral Task received (and maybe assessed) on fixed dates: the pure actions build each step with
    its own time and a plain PUT stores it, checked against the transition table like any client write."""
    authored = "2025-01-02T09:00:00+01:00"
    await put(http, service_request(f"sr-{task_id}", "pat", authored))
    task = new_task(task_id, f"sr-{task_id}", "pat", owner, authored)
    await put(http, task)
    task = receive(task, at=at(received), note=f"{INTERNAL}: mottatt")
    stored = await put(http, task)
    if assessed is not None:
        stored = await put(http, assess(task, decision=Decision.NOT_ENTITLED, at=at(assessed, 14)))
    return stored


def figures(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """organization reference -> its figures (with the reference itself under 'organization')."""
    assert body["resourceType"] == "Parameters"
    found = {}
    for p in body["parameter"]:
        if p["name"] == "organization":
            parts = flat(p["part"])
            found[parts["organization"]["reference"]] = parts
    return found


async def test_waiting_times_per_organisation_and_date_filter(client: httpx.AsyncClient) -> None:
    await put_all(client, [*ORGANIZATIONS, patient("pat", KARI_FNR)])
    d = date(2025, 3, 3)  # Monday; the assessment deadline of a receipt on d is Monday 17 March
    await task_with_dates(client, "a1", HOSPITAL_A, d, d + timedelta(days=2))  # 2 days, 2 working days
    await task_with_dates(client, "a2", HOSPITAL_A, d, d + timedelta(days=15))  # 15 days, 11 wd: late
    await task_with_dates(client, "a3", HOSPITAL_A, d + timedelta(days=3), None)  # overdue by 31 March
    await task_with_dates(client, "a4", HOSPITAL_A, date(2025, 2, 10), date(2025, 2, 12))  # before March
    await task_with_dates(client, "b1", HOSPITAL_B, d + timedelta(days=1), d + timedelta(days=4))  # 3, 3 wd
    await task_with_dates(client, "b2", HOSPITAL_B, d + timedelta(days=1), d + timedelta(days=7))  # 6, 4 wd
    await task_with_dates(client, "b3", HOSPITAL_B, d + timedelta(days=23), None)  # pending, not overdue
    await put(client, service_request("sr-new", "pat", "2025-03-01T09:00:00+01:00"))
    await put(client, new_task("b-new", "sr-new", "pat", HOSPITAL_B, "2025-03-01T09:00:00+01:00"))
    other = {"resourceType": "Task", "id": "not-referral", "status": "completed", "intent": "order"}
    await put(client, {**other, "focus": {"reference": "Patient/pat"}, "owner": HOSPITAL_B})

    march = "received-from=2025-03-01&received-to=2025-03-31&today=2025-03-31"
    response = await client.get(f"/Task/$waiting-times?{march}")
    assert response.status_code == 200, response.text
    assert INTERNAL not in response.text
    body = response.json()
    assert body["parameter"][0] == {"name": "today", "valueDate": "2025-03-31"}
    found = figures(body)
    assert found["Organization/hospital-a"] == {
        "organization": HOSPITAL_A,
        "received": 3,
        "assessed": 2,
        "pending": 1,
        "overdue": 1,
        "assessedLate": 1,
        "medianDays": 8.5,
        "medianWorkingDays": 6.5,
        "shareInTime": 0.5,
    }
    assert found["Organization/hospital-b"] == {
        "organization": HOSPITAL_B,
        "received": 3,
        "assessed": 2,
        "pending": 1,
        "overdue": 0,
        "assessedLate": 0,
        "medianDays": 4.5,
        "medianWorkingDays": 3.5,
        "shareInTime": 1.0,
    }

    early = figures((await client.get("/Task/$waiting-times?received-to=2025-03-05&today=2025-03-31")).json())
    assert {k: v["received"] for k, v in early.items()} == {
        "Organization/hospital-a": 3,  # a1, a2 and a4 (February)
        "Organization/hospital-b": 2,
    }
    only_b = figures((await client.get(f"/Task/$waiting-times?owner=Organization/hospital-b&{march}")).json())
    assert list(only_b) == ["Organization/hospital-b"]
    # as of 6 March: a2 (assessed 18 March) is still pending, b3 (received 26 March) not yet received
    then = figures((await client.get("/Task/$waiting-times?today=2025-03-06")).json())
    assert (then["Organization/hospital-a"]["assessed"], then["Organization/hospital-a"]["pending"]) == (2, 2)
    assert then["Organization/hospital-b"]["received"] == 2
    pending_only = figures(
        (
            await client.get(
                "/Task/$waiting-times?received-from=2025-03-01&today=2025-03-03&owner=Organization/hospital-a"
            )
        ).json()
    )
    assert "medianDays" not in pending_only["Organization/hospital-a"]  # nothing assessed yet: omitted
    assert (await client.get("/Task/$waiting-times")).status_code == 200  # today defaults to Oslo's date


@pytest.mark.parametrize(
    "query",
    [
        "received-from=2025-13-01",
        "received-to=03.03.2025",
        "today=20250303",
        "received-from=2025-03-10&received-to=2025-03-01",
    ],
)
async def test_waiting_times_bad_dates_are_400(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/Task/$waiting-times?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_waiting_times_invalid_data_is_422_naming_the_task(client: httpx.AsyncClient) -> None:
    await put_all(client, [*ORGANIZATIONS, patient("pat", KARI_FNR)])
    stored = await task_with_dates(client, "bad", HOSPITAL_A, date(2025, 3, 5), date(2025, 3, 6))
    # same status and businessStatus: a plain update, so only the invariants are checked
    for entry in stored["output"]:
        if entry["type"]["coding"][0]["code"] == "vurdert":
            entry["valueDateTime"] = "2025-03-01T10:00:00+01:00"
    await put(client, stored)
    response = await client.get("/Task/$waiting-times?today=2025-03-31")
    assert response.status_code == 422, response.text
    (issue,) = response.json()["issue"]
    assert "Task/bad" in issue["diagnostics"]
    assert "2025" not in issue["diagnostics"]  # the Task id only, no data of the referral


# -- with authentication on -----------------------------------------------------------------------------
async def test_citizen_token_sees_own_referrals_only(
    secure_client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    http = secure_client
    system = auth_header(mint(subject="seeder", scopes="system/*.cruds", client_id="seeder"))
    await put_all(http, [*ORGANIZATIONS, patient("kari", KARI_FNR), patient("nils", NILS_FNR)], **system)
    for sr_id, who in (("sr-kari", "kari"), ("sr-nils", "nils")):
        resources = [
            service_request(sr_id, who, "2026-01-05T09:00:00+01:00"),
            new_task(f"t-{sr_id}", sr_id, who, HOSPITAL, "2026-01-05T09:00:00+01:00"),
        ]
        await put_all(http, resources, **system)
        await step(http, f"t-{sr_id}", "receive", parameters(note=("String", INTERNAL)), **system)

    kari = auth_header(mint(subject="kari", scopes="patient/*.rs", pid=KARI_FNR, patient="kari"))
    own = await http.get("/Patient/kari/$referrals", headers=kari)
    assert own.status_code == 200, own.text
    assert INTERNAL not in own.text
    assert [(r["serviceRequest"]["reference"], r["state"]) for r in referrals(own.json())] == [
        ("ServiceRequest/sr-kari", "received")
    ]
    from_token = await http.get("/Patient/$referrals", headers=kari)
    assert from_token.status_code == 200, from_token.text
    assert from_token.json() == own.json()

    # another patient's referrals: the compartment check refuses, as for GET Patient/nils/ServiceRequest
    refused = await http.get("/Patient/nils/$referrals", headers=kari)
    assert refused.status_code == 403, refused.text
    assert "sr-nils" not in refused.text

    # a citizen token without a launch patient: the {id} form works through the fødselsnummer, the
    # token form has no patient to use
    no_launch = auth_header(mint(subject="kari", scopes="patient/*.rs", pid=KARI_FNR))
    assert (await http.get("/Patient/kari/$referrals", headers=no_launch)).status_code == 200
    assert (await http.get("/Patient/nils/$referrals", headers=no_launch)).status_code == 403
    missing = await http.get("/Patient/$referrals", headers=no_launch)
    assert missing.status_code == 400, missing.text
    assert (await http.get("/Patient/kari/$referrals")).status_code == 401  # no token at all


async def test_personnel_of_a_stranger_organisation_are_refused_the_referral_operations(
    secure_client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    # The operations are routed from the registry now; each still reads through the engine with the
    # caller's principal, so a clinic with no care relation to Kari gets nothing of hers.
    http = secure_client
    system = auth_header(mint(subject="seeder", scopes="system/*.cruds", client_id="seeder"))
    resources = [
        *ORGANIZATIONS,
        patient("kari", KARI_FNR),
        service_request("sr-kari", "kari", "2026-01-05T09:00:00+01:00"),
        new_task("t-sr-kari", "sr-kari", "kari", HOSPITAL, "2026-01-05T09:00:00+01:00"),
    ]
    await put_all(http, resources, **system)
    await step(http, "t-sr-kari", "receive", parameters(note=("String", INTERNAL)), **system)
    stranger = auth_header(
        mint(
            subject="hpr-3000003",
            scopes="user/*.cruds",
            hpr="3000003",
            orgnr=OTHER_CLINIC_ORGNR,
            category="LE",
        )
    )
    views = await http.get("/Patient/kari/$referrals", headers=stranger)
    assert views.status_code == 403, views.text
    assert "sr-kari" not in views.text
    step_refused = await http.post(
        "/Task/t-sr-kari/$accept", content=orjson.dumps(parameters()), headers={**FHIR_JSON, **stranger}
    )
    assert step_refused.status_code == 403, step_refused.text
    # The system client's figures count the received referral; the stranger's search finds none of it.
    everyone = await http.get("/Task/$waiting-times", headers=system)
    assert "Organization/hospital" in everyone.text
    waiting = await http.get("/Task/$waiting-times", headers=stranger)
    assert waiting.status_code == 200, waiting.text
    assert "Organization/hospital" not in waiting.text
    task = await http.get("/Task/t-sr-kari", headers=system)
    assert task.json()["status"] == "received"  # nothing was accepted on the stranger's word
