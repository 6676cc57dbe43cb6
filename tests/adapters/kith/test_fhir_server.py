"""Referral bundles posted to the real server (SQLite, and PostgreSQL when available): a new referral, the
same message again, a change and a cancellation leave one ServiceRequest and one Task, and the stored
resources map back to the referral."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import orjson

from app.adapters.kith._fhir_common import escape_token
from app.adapters.kith.from_fhir import referral_from_resources
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import MessageKind, Referral
from app.adapters.kith.to_fhir import referral_identifier, referral_to_bundle
from tests.adapters.kith.conftest import fixture_bytes

FHIR_JSON = {"Content-Type": "application/fhir+json"}


async def _post(client: httpx.AsyncClient, ref: Referral) -> dict[str, Any]:
    response = await client.post("/", content=orjson.dumps(referral_to_bundle(ref)), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _search(client: httpx.AsyncClient, res_type: str, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/{res_type}?{query}")
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


async def _read_all(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for res_type in ("Patient", "Organization", "Practitioner", "PractitionerRole", "RelatedPerson"):
        for resource in await _search(client, res_type, "_count=100"):
            found[f"{res_type}/{resource['id']}"] = resource
    for resource in await _search(client, "DocumentReference", "_count=100"):
        found[f"DocumentReference/{resource['id']}"] = resource
    return found


async def test_new_again_change_cancel_keep_one_referral(client: httpx.AsyncClient) -> None:
    new = parse_henvisning(fixture_bytes("henvisning_v2_nytilstand.xml"))
    await _post(client, new)
    await _post(client, new)  # the same message twice: nothing new
    change = dataclasses.replace(
        new, kind=MessageKind.CHANGE, msg_id="endring-1", request_comment="Nye prøvesvar"
    )
    await _post(client, change)

    identifier = referral_identifier(new)
    token = f"identifier={identifier['system']}|{escape_token(identifier['value'])}"
    requests = await _search(client, "ServiceRequest")
    tasks = await _search(client, "Task")
    assert len(requests) == 1
    assert len(tasks) == 1
    assert len(await _search(client, "Patient")) == 1
    assert len(await _search(client, "Organization")) == 3  # sender, receiver and its department
    assert len(await _search(client, "RelatedPerson")) == len(new.related_persons)
    assert len(await _search(client, "DocumentReference")) == len(new.attachments)
    assert requests[0]["status"] == "active"
    assert tasks[0]["status"] == "requested"
    assert len(await _search(client, "ServiceRequest", token)) == 1

    stored = await _read_all(client)
    again = referral_from_resources(requests[0], tasks[0], stored.get)
    assert again.msg_id == "endring-1"
    assert again.request_comment == "Nye prøvesvar"
    assert again.patient.idents == new.patient.idents
    assert again.diagnoses == new.diagnoses
    assert again.receiver.sub_organisation == new.receiver.sub_organisation

    cancel = dataclasses.replace(
        new, kind=MessageKind.CANCEL, msg_id="kansellering-1", request_comment="Trukket"
    )
    await _post(client, cancel)
    requests = await _search(client, "ServiceRequest")
    tasks = await _search(client, "Task")
    assert [r["status"] for r in requests] == ["revoked"]
    assert [t["status"] for t in tasks] == ["cancelled"]
    assert tasks[0]["statusReason"]["text"] == "Trukket"


async def test_forwarded_referral_comes_back_exactly(client: httpx.AsyncClient) -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v2_videre.xml"))
    await _post(client, ref)
    [service_request] = await _search(client, "ServiceRequest")
    [task] = await _search(client, "Task")
    assert task["businessStatus"]["coding"][0]["code"] == "videresendt"
    assert task["restriction"]["period"]["end"] == "2024-11-15"
    assert referral_from_resources(service_request, task, (await _read_all(client)).get) == ref
