"""The referral workflow operations through the REST API, on SQLite and PostgreSQL: each step is a new
Task version, illegal steps and bad inputs get 422, and plain Task writes obey the same table."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import orjson

from app.resources.referrals.codes import REFERRAL_CATEGORY, REFERRAL_STATUS_SYSTEM, REFERRAL_TASK_PROFILE
from tests.fhir.bundles import put_each
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.referrals.builders import REFERRAL_TASK_CODE

HOSPITAL = {"reference": "Organization/hospital"}
DPS = {"reference": "Organization/dps"}


def referral_bundle() -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "pat", "name": [{"family": "Nordmann", "given": ["Kari"]}]},
        {"resourceType": "Organization", "id": "hospital", "name": "Fjordby sykehus"},
        {"resourceType": "Organization", "id": "dps", "name": "Fjordby DPS"},
        {
            "resourceType": "ServiceRequest",
            "id": "ref",
            "status": "active",
            "intent": "order",
            "category": [{"coding": [REFERRAL_CATEGORY]}],
            "subject": {"reference": "Patient/pat"},
            "performer": [HOSPITAL],
            "authoredOn": "2026-11-02T09:00:00+01:00",
        },
        {
            "resourceType": "Task",
            "id": "task",
            "status": "requested",
            "intent": "order",
            "code": REFERRAL_TASK_CODE,
            "focus": {"reference": "ServiceRequest/ref"},
            "for": {"reference": "Patient/pat"},
            "owner": HOSPITAL,
            "authoredOn": "2026-11-02T09:00:00+01:00",
        },
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def parameters(**values: Any) -> dict[str, Any]:
    parts = []
    for name, value in values.items():
        kind = {"owner": "Reference", "to": "Reference", "careDeadline": "Date", "earliest": "Date"}
        kind |= {"latest": "Date", "note": "String", "text": "String"}
        parts.append({"name": name, f"value{kind.get(name, 'Code')}": value})
    return {"resourceType": "Parameters", "parameter": parts}


async def step(client: httpx.AsyncClient, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return await client.post(
        f"/Task/task/${action}", content=orjson.dumps(body or parameters()), headers=FHIR_JSON
    )


async def seeded(client: httpx.AsyncClient) -> None:
    response = await client.post("/", content=orjson.dumps(referral_bundle()), headers=FHIR_JSON)
    assert response.status_code == 200, response.text


def business_status(task: dict[str, Any]) -> str:
    (coding,) = [c for c in task["businessStatus"]["coding"] if c["system"] == REFERRAL_STATUS_SYSTEM]
    code: str = coding["code"]
    return code


async def test_receive_assess_and_offer_a_conversation(client: httpx.AsyncClient) -> None:
    await seeded(client)
    received = await step(client, "receive", parameters(note="Mottatt i felles henvisningsmottak"))
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "received"
    assert received.headers["ETag"] == 'W/"2"'

    deadline = (date.today() + timedelta(days=60)).isoformat()
    assessed = await step(
        client, "assess", parameters(decision="rett", priority="ordinaer", careDeadline=deadline)
    )
    assert assessed.status_code == 200, assessed.text
    task = assessed.json()
    assert business_status(task) == "rett-til-nodvendig-helsehjelp"
    assert task["restriction"]["period"]["end"] == deadline

    earliest = (date.today() + timedelta(days=3)).isoformat()
    latest = (date.today() + timedelta(days=20)).isoformat()
    window = parameters(earliest=earliest, latest=latest)
    over_a_right = await step(client, "offer-assessment-conversation", window)
    assert over_a_right.status_code == 422, over_a_right.text  # the right would be dropped silently
    reassessed = await step(client, "assess", parameters(decision="behov-for-vurderingssamtale"))
    assert reassessed.status_code == 200, reassessed.text
    offered = await step(client, "offer-assessment-conversation", window)
    assert offered.status_code == 200, offered.text
    assert business_status(offered.json()) == "vurderingssamtale-tilbudt"
    appointments = (await client.get("/Appointment?based-on=ServiceRequest/ref")).json()
    (entry,) = appointments["entry"]
    assert entry["resource"]["status"] == "proposed"
    assert entry["resource"]["requestedPeriod"] == [{"start": earliest, "end": latest}]

    history = (await client.get("/Task/task/_history")).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["5", "4", "3", "2", "1"]
    assert [e["resource"]["status"] for e in history["entry"]][-2:] == ["received", "requested"]


async def test_forward_and_reject_with_reasons(client: httpx.AsyncClient) -> None:
    await seeded(client)
    assert (await step(client, "receive")).status_code == 200
    forward = parameters(to=DPS)
    forward["parameter"].append({"name": "reason", "valueString": "Hører til DPS"})
    forwarded = await step(client, "forward", forward)
    assert forwarded.status_code == 200, forwarded.text
    assert forwarded.json()["owner"] == DPS
    assert forwarded.json()["status"] == "requested"
    assert (await step(client, "receive")).status_code == 200
    assert (await step(client, "assess", parameters(decision="ikke-rett"))).status_code == 200
    rejected = await step(client, "reject", parameters(reason="kriterier-ikke-oppfylt", text="Ikke behov"))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    again = await step(client, "receive")
    assert again.status_code == 422, again.text  # rejected is final
    assert again.json()["resourceType"] == "OperationOutcome"


async def test_illegal_steps_and_bad_inputs_are_refused_and_change_nothing(client: httpx.AsyncClient) -> None:
    await seeded(client)
    early = await step(client, "accept")
    assert early.status_code == 422, early.text
    assert early.json()["issue"][0]["severity"] == "error"
    assert (await step(client, "receive")).status_code == 200
    missing = await step(client, "assess")
    assert missing.status_code == 422, missing.text
    assert "decision" in missing.text
    no_deadline = await step(client, "assess", parameters(decision="rett", priority="ordinaer"))
    assert no_deadline.status_code == 422, no_deadline.text
    unknown = await step(client, "teleport")
    assert unknown.status_code == 404, unknown.text
    not_parameters = await client.post(
        "/Task/task/$receive", content=b'{"resourceType": "Patient"}', headers=FHIR_JSON
    )
    assert not_parameters.status_code == 400, not_parameters.text
    not_json = await client.post("/Task/task/$receive", content=b"{", headers=FHIR_JSON)
    assert not_json.status_code == 400
    assert (await step(client, "receive")).status_code == 422  # already received
    current = (await client.get("/Task/task")).json()
    assert current["meta"]["versionId"] == "2"
    assert current["status"] == "received"


async def test_plain_task_writes_follow_the_same_rules(client: httpx.AsyncClient) -> None:
    await seeded(client)
    task = (await client.get("/Task/task")).json()
    jump = await client.put(
        "/Task/task", content=orjson.dumps({**task, "status": "completed"}), headers=FHIR_JSON
    )
    assert jump.status_code == 422, jump.text
    wrong_start = {**task, "id": "other", "status": "in-progress"}
    created = await client.put("/Task/other", content=orjson.dumps(wrong_start), headers=FHIR_JSON)
    assert created.status_code == 422, created.text
    unrelated = {"resourceType": "Task", "status": "completed", "intent": "order"}
    assert (await client.post("/Task", content=orjson.dumps(unrelated), headers=FHIR_JSON)).status_code == 201
    assert (await client.get("/Task/task")).json()["meta"]["versionId"] == "1"


async def test_a_lab_order_task_is_not_a_referral(client: httpx.AsyncClient) -> None:
    # After R4's Task example "example2" (a lab order being fulfilled): a ServiceRequest as focus, no
    # referral code. It starts in progress and completes, which the referral workflow would refuse.
    lab_order = {
        "resourceType": "ServiceRequest",
        "id": "lab",
        "status": "active",
        "intent": "original-order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "55233-1"}]},
        "subject": {"reference": "Patient/pat"},
    }
    task = {
        "resourceType": "Task",
        "id": "lab-task",
        "status": "in-progress",
        "intent": "filler-order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": "ServiceRequest/lab"},
        "for": {"reference": "Patient/pat"},
        "authoredOn": "2026-11-02T09:00:00+01:00",
    }
    seeded = put_each({"resourceType": "Patient", "id": "pat"}, lab_order, task)
    created = await client.post("/", content=orjson.dumps(seeded), headers=FHIR_JSON)
    assert created.status_code == 200, created.text
    assert created.json()["entry"][2]["response"]["status"].startswith("201")
    done = await client.put(
        "/Task/lab-task", content=orjson.dumps({**task, "status": "completed"}), headers=FHIR_JSON
    )
    assert done.status_code == 200, done.text
    # The referral operations refuse it, as for any Task that is not a referral's.
    refused = await client.post(
        "/Task/lab-task/$receive", json={"resourceType": "Parameters"}, headers=FHIR_JSON
    )
    assert refused.status_code == 422, refused.text
    # The referral-task profile makes a Task a referral Task as the code does.
    uncoded = {key: value for key, value in task.items() if key != "code"}
    profiled = {**uncoded, "id": "profiled", "meta": {"profile": [REFERRAL_TASK_PROFILE]}}
    wrong = await client.put("/Task/profiled", content=orjson.dumps(profiled), headers=FHIR_JSON)
    assert wrong.status_code == 422, wrong.text  # a referral Task starts as requested
    assert wrong.json()["issue"][0]["code"] == "business-rule", wrong.text
