"""$medication-list and $reconcile through the REST API, on SQLite and PostgreSQL: the List is created on
the first apply, a diff writes nothing, an apply writes statements, Provenance and the List under its
version, a stale or losing apply gets 412 with the fresh list, and nothing is lost on retry."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from app.resources.medication_list.codes import FREE_TEXT_EXTENSION, LIST_IDENTIFIER_SYSTEM
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.medication_list.builders import metformin, paracet, simvastatin, tran

KARI = {"resourceType": "Patient", "id": "kari", "name": [{"family": "Testesen", "given": ["Kari"]}]}


def reconcile_body(
    *medications: dict[str, Any], apply: bool = False, accept: tuple[str, ...] = (), reason: str | None = None
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [{"name": "medication", "resource": m} for m in medications]
    parameters.append({"name": "apply", "valueBoolean": apply})
    parameters += [{"name": "accept", "valueString": key} for key in accept]
    if reason:
        parameters.append({"name": "reason", "valueString": reason})
    return {"resourceType": "Parameters", "parameter": parameters}


async def reconcile(
    http: httpx.AsyncClient, body: dict[str, Any], if_match: str | None = None, **headers: str
) -> httpx.Response:
    extra = {"If-Match": if_match} if if_match is not None else {}
    return await http.post(
        "/Patient/kari/$reconcile", content=orjson.dumps(body), headers={**FHIR_JSON, **extra, **headers}
    )


def changes(answer: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for parameter in answer["parameter"]:
        if parameter["name"] == "change":
            parts = {p["name"]: p for p in parameter["part"]}
            out.append((parts["kind"]["valueCode"], parts["key"]["valueString"]))
    return out


def listed(bundle: dict[str, Any]) -> list[str]:
    """The medicine texts of a $medication-list Bundle, in the List's order."""
    (first, *rest) = [e["resource"] for e in bundle["entry"]]
    assert first["resourceType"] == "List"
    return [
        r["medicationCodeableConcept"]["text"] for r in rest if r["resourceType"] == "MedicationStatement"
    ]


async def count(http: httpx.AsyncClient, query: str) -> int:
    response = await http.get(f"/{query}{'&' if '?' in query else '?'}_summary=count")
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def started(http: httpx.AsyncClient, *medications: dict[str, Any]) -> str:
    """Kari with a list of these medicines; returns the list's ETag."""
    assert (await http.put("/Patient/kari", json=KARI)).status_code in (200, 201)
    response = await reconcile(http, reconcile_body(*medications, apply=True), 'W/"0"')
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


async def test_diff_writes_nothing_and_the_first_apply_creates_the_list(client: httpx.AsyncClient) -> None:
    assert (await client.put("/Patient/kari", json=KARI)).status_code == 201
    empty = await client.get("/Patient/kari/$medication-list")
    assert empty.status_code == 200, empty.text
    assert empty.headers["ETag"] == 'W/"0"'
    assert listed(empty.json()) == []

    diffed = await reconcile(client, reconcile_body(metformin(), tran()))
    assert diffed.status_code == 200, diffed.text
    assert changes(diffed.json()) == [("added", "fest:ID_TEST-METFORMIN-500"), ("added", "text:tranflytende")]
    for query in ("List", "MedicationStatement", "Provenance"):
        assert await count(client, query) == 0  # a diff writes nothing

    no_version = await reconcile(client, reconcile_body(metformin(), apply=True))
    assert no_version.status_code == 412, no_version.text

    applied = await reconcile(client, reconcile_body(metformin(), tran(), apply=True), 'W/"0"')
    assert applied.status_code == 200, applied.text
    assert applied.headers["ETag"] == 'W/"2"'  # created empty (1), then the reconciliation (2)
    shown = await client.get("/Patient/kari/$medication-list")
    assert shown.headers["ETag"] == 'W/"2"'
    assert listed(shown.json()) == ["Metformin tablett 500 mg", "Tran, flytende"]
    medication_list = shown.json()["entry"][0]["resource"]
    assert (medication_list["status"], medication_list["mode"]) == ("current", "working")
    assert medication_list["identifier"] == [{"system": LIST_IDENTIFIER_SYSTEM, "value": "kari"}]
    statements = {
        s["medicationCodeableConcept"]["text"]: s for s in (e["resource"] for e in shown.json()["entry"][1:])
    }
    assert {"url": FREE_TEXT_EXTENSION, "valueBoolean": True} in statements["Tran, flytende"]["extension"]
    assert FREE_TEXT_EXTENSION not in orjson.dumps(statements["Metformin tablett 500 mg"]).decode()
    assert await count(client, "Provenance") == 2
    assert await count(client, "List") == 1


async def test_stop_keeps_the_medicine_in_history_with_its_reason(client: httpx.AsyncClient) -> None:
    version = await started(client, metformin(), simvastatin())
    incoming = [metformin(dose="2 tabletter morgen", dose_value=2)]
    reason = "Muskelsmerter, seponert ved innleggelse"
    response = await reconcile(client, reconcile_body(*incoming, apply=True, reason=reason), version)
    assert response.status_code == 200, response.text
    assert changes(response.json()) == [("changed", "fest:ID_TEST-METFORMIN-500"), ("stopped", "atc:C10AA01")]
    assert listed((await client.get("/Patient/kari/$medication-list")).json()) == ["Metformin tablett 500 mg"]

    stopped = (await client.get("/MedicationStatement?status=stopped")).json()["entry"]
    (statement,) = [e["resource"] for e in stopped]
    assert statement["medicationCodeableConcept"]["text"] == "Simvastatin tablett 20 mg"
    assert statement["statusReason"] == [{"text": reason}]
    assert "end" in statement["effectivePeriod"]
    history = (await client.get(f"/MedicationStatement/{statement['id']}/_history")).json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["stopped", "active"]
    # the List's own history still has the version that listed it
    list_id = response.json()["parameter"][-1]["resource"]["id"]
    old = (await client.get(f"/List/{list_id}/_history/2")).json()
    assert f"MedicationStatement/{statement['id']}" in orjson.dumps(old).decode()
    provenance = (await client.get(f"/Provenance?target=MedicationStatement/{statement['id']}")).json()
    reasons = [e["resource"]["reason"][0]["text"] for e in provenance["entry"]]
    assert reason in reasons


async def test_stale_version_gets_412_with_the_fresh_list(client: httpx.AsyncClient) -> None:
    await started(client, metformin())
    stale = await reconcile(client, reconcile_body(metformin(), paracet(), apply=True), 'W/"1"')
    assert stale.status_code == 412, stale.text
    assert stale.headers["ETag"] == 'W/"2"'
    body = stale.json()
    assert listed(body) == ["Metformin tablett 500 mg"]
    assert body["entry"][-1]["resource"]["resourceType"] == "OperationOutcome"
    assert await count(client, "MedicationStatement") == 1


async def test_concurrent_applies_one_wins_and_the_retry_loses_nothing(client: httpx.AsyncClient) -> None:
    version = await started(client, metformin())
    hospital = reconcile_body(metformin(), paracet(), apply=True, reason="Sykehuset: ny smertelindring")
    home_care = reconcile_body(metformin(), tran(), apply=True, reason="Hjemmetjenesten: pasienten tar tran")
    first, second = await asyncio.gather(
        reconcile(client, hospital, version), reconcile(client, home_care, version)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412], (first.text, second.text)
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    loser_body = hospital if loser is first else home_care
    loser_key = "varenr:999901" if loser is first else "text:tranflytende"
    fresh = loser.json()
    assert loser.headers["ETag"] == winner.headers["ETag"]
    assert len(listed(fresh)) == 2  # the winner's change is in the fresh list

    # the loser reconciles again against the fresh list and applies only its own addition
    diffed = await reconcile(
        client, {**loser_body, "parameter": [p for p in loser_body["parameter"] if p["name"] != "apply"]}
    )
    assert ("added", loser_key) in changes(diffed.json())
    retry_body = reconcile_body(
        *[p["resource"] for p in loser_body["parameter"] if p["name"] == "medication"],
        apply=True,
        accept=(loser_key,),
    )
    retried = await reconcile(client, retry_body, loser.headers["ETag"])
    assert retried.status_code == 200, retried.text
    final = await client.get("/Patient/kari/$medication-list")
    assert sorted(listed(final.json())) == [
        "Metformin tablett 500 mg",
        "Paracetamol tablett 500 mg",
        "Tran, flytende",
    ]
    assert await count(client, "MedicationStatement") == 3  # nothing orphaned by the losing apply
    assert await count(client, "Provenance") == 3


async def test_concurrent_first_applies_make_one_list(client: httpx.AsyncClient) -> None:
    assert (await client.put("/Patient/kari", json=KARI)).status_code == 201
    one = reconcile_body(metformin(), apply=True)
    other = reconcile_body(tran(), apply=True)
    responses = await asyncio.gather(reconcile(client, one, 'W/"0"'), reconcile(client, other, 'W/"0"'))
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    assert await count(client, "List") == 1
    assert await count(client, "MedicationStatement") == 1


async def test_bad_input(client: httpx.AsyncClient) -> None:
    assert (await client.put("/Patient/kari", json=KARI)).status_code == 201
    not_parameters = await reconcile(client, {"resourceType": "Patient"})
    assert not_parameters.status_code == 400
    no_medicine = await reconcile(
        client, reconcile_body({"resourceType": "MedicationStatement", "status": "active"})
    )
    assert no_medicine.status_code == 422, no_medicine.text
    as_list = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "contained": [{**tran(), "id": "m1"}],
        "entry": [{"item": {"reference": "#m1"}}],
    }
    diffed = await reconcile(client, as_list)
    assert diffed.status_code == 200, diffed.text
    assert changes(diffed.json()) == [("added", "text:tranflytende")]


async def test_entries_link_to_their_prescription_and_dispense(client: httpx.AsyncClient) -> None:
    assert (await client.put("/Patient/kari", json=KARI)).status_code == 201
    concept = metformin()["medicationCodeableConcept"]
    request = {
        "resourceType": "MedicationRequest",
        "id": "rx1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": "Patient/kari"},
    }
    dispense = {
        "resourceType": "MedicationDispense",
        "id": "disp1",
        "status": "completed",
        "medicationCodeableConcept": concept,
        "subject": {"reference": "Patient/kari"},
        "authorizingPrescription": [{"reference": "MedicationRequest/rx1"}],
    }
    for resource in (request, dispense):
        stored = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
        assert stored.status_code == 201, stored.text
    linked = metformin(
        basedOn=[{"reference": "MedicationRequest/rx1"}],
        derivedFrom=[{"reference": "MedicationDispense/disp1"}],
    )
    applied = await reconcile(client, reconcile_body(linked, tran(), apply=True), 'W/"0"')
    assert applied.status_code == 200, applied.text
    found = (await client.get("/MedicationStatement?part-of:missing=true&_count=10")).json()
    by_text = {e["resource"]["medicationCodeableConcept"]["text"]: e["resource"] for e in found["entry"]}
    assert by_text["Metformin tablett 500 mg"]["basedOn"] == [{"reference": "MedicationRequest/rx1"}]
    assert by_text["Metformin tablett 500 mg"]["derivedFrom"] == [{"reference": "MedicationDispense/disp1"}]
    assert "basedOn" not in by_text["Tran, flytende"]  # in use without a prescription
    # a link to a prescription that does not exist is refused (referential integrity): nothing written
    dangling = metformin(fest="ID_OTHER", basedOn=[{"reference": "MedicationRequest/nope"}])
    refused = await reconcile(
        client, reconcile_body(linked, tran(), dangling, apply=True), applied.headers["ETag"]
    )
    assert refused.status_code == 422, refused.text
    assert await count(client, "MedicationStatement") == 2
