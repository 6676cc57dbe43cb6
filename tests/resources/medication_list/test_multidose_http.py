"""Multidose ownership through the REST API with authentication on, on SQLite and PostgreSQL: the
hospital's change to the multidose part becomes a Task to Kari's responsible GP, its other changes are
applied, and the GP's own change is applied directly."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from app.resources.medication_list.codes import MULTIDOSE_RESPONSIBLE_EXTENSION
from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.medication_list.builders import in_multidose, metformin, paracet, tran
from tests.resources.medication_list.test_operations_http import changes, listed, reconcile_body
from tests.security.helpers import World
from tests.security.scenario import (
    GP_HPR,
    GP_OFFICE_ORGNR,
    HOSPITAL_HPR,
)


def responsible_extension() -> dict[str, Any]:
    return {
        "url": MULTIDOSE_RESPONSIBLE_EXTENSION,
        "extension": [
            {
                "url": "practitioner",
                "valueReference": {"identifier": {"system": HPR_SYSTEM, "value": GP_HPR}},
            },
            {
                "url": "organization",
                "valueReference": {"identifier": {"system": ORGNR_SYSTEM, "value": GP_OFFICE_ORGNR}},
            },
        ],
    }


async def post_reconcile(
    http: httpx.AsyncClient, body: dict[str, Any], who: dict[str, str], version: str
) -> httpx.Response:
    headers = {**FHIR_JSON, **who, "If-Match": version}
    return await http.post("/Patient/kari/$reconcile", content=orjson.dumps(body), headers=headers)


async def test_multidose_ownership(world: World) -> None:
    http, system, gp, hospital = world.http, world.system, world.gp, world.hospital
    started = await post_reconcile(
        http, reconcile_body(in_multidose(metformin()), tran(), apply=True), gp, 'W/"0"'
    )
    assert started.status_code == 200, started.text
    # the GP is registered as multidose-responsible (M27.1), recorded on the List
    (stored,) = [p["resource"] for p in started.json()["parameter"] if p["name"] == "list"]
    registered = {**stored, "extension": [responsible_extension()]}
    put = await http.put(
        f"/List/{stored['id']}", json=registered, headers={**system, "If-Match": started.headers["ETag"]}
    )
    assert put.status_code == 200, put.text
    version = put.headers["ETag"]

    # the hospital: a new dose of the multidose medicine, tran stopped, paracetamol added
    incoming = [in_multidose(metformin(dose="2 tabletter morgen", dose_value=2)), paracet()]
    answer = await post_reconcile(
        http, reconcile_body(*incoming, apply=True, reason="Innleggelse"), hospital, version
    )
    assert answer.status_code == 200, answer.text
    assert changes(answer.json()) == [
        ("changed", "fest:ID_TEST-METFORMIN-500"),
        ("stopped", "text:tranflytende"),
        ("added", "varenr:999901"),
    ]
    parameters = {p["name"]: p for p in answer.json()["parameter"]}
    assert parameters["applied"]["valueInteger"] == 2
    task_ref = parameters["proposal"]["valueReference"]["reference"]
    shown = await http.get("/Patient/kari/$medication-list", headers=gp)
    assert listed(shown.json()) == ["Metformin tablett 500 mg", "Paracetamol tablett 500 mg"]
    (metformin_now,) = [e["resource"] for e in shown.json()["entry"][1:2]]
    assert metformin_now["dosage"][0]["text"] == "1 tablett morgen"  # unchanged: only proposed

    task = (await http.get(f"/{task_ref}", headers=gp)).json()
    assert (task["status"], task["intent"]) == ("requested", "proposal")
    assert task["owner"] == {"identifier": {"system": HPR_SYSTEM, "value": GP_HPR}}
    assert task["requester"]["identifier"]["value"] == HOSPITAL_HPR
    assert task["contained"][0]["dosage"][0]["text"] == "2 tabletter morgen"

    # the hospital cannot decide its own proposal; the responsible GP accepts it: applied
    decide = f"/{task_ref}/$multidose-decision"
    accept = {"resourceType": "Parameters", "parameter": [{"name": "decision", "valueCode": "accept"}]}
    refused = await http.post(decide, content=orjson.dumps(accept), headers={**FHIR_JSON, **hospital})
    assert refused.status_code == 403, refused.text
    accepted = await http.post(decide, content=orjson.dumps(accept), headers={**FHIR_JSON, **gp})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "completed"
    after = await http.get("/Patient/kari/$medication-list", headers=gp)
    assert after.json()["entry"][1]["resource"]["dosage"][0]["text"] == "2 tabletter morgen"
    again = await http.post(decide, content=orjson.dumps(accept), headers={**FHIR_JSON, **gp})
    assert again.status_code == 422, again.text  # decided once

    # the hospital proposes to stop it; the GP rejects: it stays, the Task says why
    stop = await post_reconcile(http, reconcile_body(paracet(), apply=True), hospital, after.headers["ETag"])
    assert stop.status_code == 200, stop.text
    stop_task = next(p for p in stop.json()["parameter"] if p["name"] == "proposal")["valueReference"][
        "reference"
    ]
    reject = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "decision", "valueCode": "reject"},
            {"name": "reason", "valueString": "Skal fortsette"},
        ],
    }
    rejected = await http.post(
        f"/{stop_task}/$multidose-decision", content=orjson.dumps(reject), headers={**FHIR_JSON, **gp}
    )
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["statusReason"]["text"]) == (
        "rejected",
        "Skal fortsette",
    )
    kept = await http.get("/Patient/kari/$medication-list", headers=gp)
    assert listed(kept.json()) == ["Metformin tablett 500 mg", "Paracetamol tablett 500 mg"]

    # the responsible GP changes the multidose part directly: applied, no proposal
    own = [in_multidose(metformin(dose="3 tabletter morgen", dose_value=3)), paracet()]
    by_gp = await post_reconcile(http, reconcile_body(*own, apply=True), gp, kept.headers["ETag"])
    assert by_gp.status_code == 200, by_gp.text
    assert "proposal" not in {p["name"] for p in by_gp.json()["parameter"]}
    final = await http.get("/Patient/kari/$medication-list", headers=gp)
    assert final.json()["entry"][1]["resource"]["dosage"][0]["text"] == "3 tabletter morgen"


async def test_a_multidose_medicine_is_not_written_around_the_operations(world: World) -> None:
    http, gp, hospital = world.http, world.gp, world.hospital
    started = await post_reconcile(
        http, reconcile_body(in_multidose(metformin()), tran(), apply=True), gp, 'W/"0"'
    )
    assert started.status_code == 200, started.text
    shown = (await http.get("/Patient/kari/$medication-list", headers=gp)).json()
    statements = [e["resource"] for e in shown["entry"][1:]]
    [multidose] = [s for s in statements if "Metformin" in s["medicationCodeableConcept"]["text"]]
    [plain] = [s for s in statements if s["id"] != multidose["id"]]
    for who in (hospital, gp):  # not even the responsible doctor: the operations keep the history
        changed = {**multidose, "dosage": [{"text": "4 tabletter"}]}
        put = await http.put(f"/MedicationStatement/{multidose['id']}", json=changed, headers=who)
        assert put.status_code == 422, put.text
        assert "multidose" in put.json()["issue"][0]["diagnostics"]
        deleted = await http.delete(f"/MedicationStatement/{multidose['id']}", headers=who)
        assert deleted.status_code == 422, deleted.text
    marked = {**plain, "extension": [*plain.get("extension", []), in_multidose(tran())["extension"][-1]]}
    assert (await http.put(f"/MedicationStatement/{plain['id']}", json=marked, headers=gp)).status_code == 422
    note = {
        **plain,
        "note": [{"text": "Tas med mat"}],
    }  # a medicine not in multidose: the access rules decide
    assert (await http.put(f"/MedicationStatement/{plain['id']}", json=note, headers=gp)).status_code == 200
