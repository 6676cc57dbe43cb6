"""Every PLO sample through `POST /$kith-message` on SQLite and PostgreSQL: a positive AppRec naming its
MsgId and going back to its sender, a repeat stores nothing new; a report's Endring updates and its
Kansellering revokes what the Ny made."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.plo.parse import parse_plo
from app.adapters.plo.report_fhir import DOCUMENT_SYSTEM
from tests.adapters.kith.test_routes_http import post, search, stored_count
from tests.adapters.plo.conftest import SAMPLES, legacy_files, sample

FHIR_JSON = {"Content-Type": "application/fhir+json"}
NY = "Innleggelsesrapport_v1-6_Ny.xml"
ENDRING = "Innleggelsesrapport_v1-6_Endring.xml"
KANSELLERING = "Innleggelsesrapport_v1-6_Kansellering.xml"


def _read(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize("path", legacy_files(SAMPLES))
async def test_every_sample_gets_a_positive_apprec_and_is_idempotent(
    client: httpx.AsyncClient, app: FastAPI, path: Path
) -> None:
    data = _read(path)
    msg = parse_plo(parse_xml(data))
    status, apprec = await post(client, data)
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    assert apprec.original_id == msg.msg_id
    assert apprec.receiver.ident("HER") == msg.sender.ident("HER")
    [record] = await search(client, "/Communication")
    assert record["subject"]["reference"].startswith("Patient/")
    if msg.family.is_report:
        [document] = await search(client, "/DocumentReference")
        assert record["about"] == [{"reference": f"DocumentReference/{document['id']}"}]
    count = await stored_count(app)
    again_status, again = await post(client, data)
    assert (again_status, again.id) == (200, apprec.id)
    assert await stored_count(app) == count


async def _ok(client: httpx.AsyncClient, name: str) -> None:
    status, apprec = await post(client, sample(name))
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors


def _statuses(resources: list[dict[str, Any]]) -> set[str]:
    return {r.get("status") or r["verificationStatus"]["coding"][0]["code"] for r in resources}


async def test_endring_updates_and_kansellering_revokes(client: httpx.AsyncClient) -> None:
    await _ok(client, NY)
    [document] = await search(client, "/DocumentReference")
    [composition] = await search(client, "/Composition")
    assert (document["status"], composition["status"]) == ("current", "final")
    assert document["identifier"][0]["system"] == DOCUMENT_SYSTEM
    assert len(await search(client, "/MedicationStatement")) == 5
    [condition] = await search(client, "/Condition")
    assert condition["code"]["coding"][0]["code"] == "I50"
    [team] = await search(client, "/CareTeam")
    assert team["status"] == "active"
    # the reported medicines are a proposal: the clinician diffs them against the medication list
    [snapshot] = await search(client, "/List")
    reconcile = {
        "resourceType": "Parameters",
        "parameter": [{"name": "source", "valueReference": {"reference": f"List/{snapshot['id']}"}}],
    }
    patient = condition["subject"]["reference"]
    answer = await client.post(f"/{patient}/$reconcile", json=reconcile, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    changes = [p for p in answer.json()["parameter"] if p["name"] == "change"]
    kinds = [next(q["valueCode"] for q in c["part"] if q["name"] == "kind") for c in changes]
    assert kinds == ["added"] * 5
    assert len(await search(client, "/RelatedPerson")) == 2

    await _ok(client, ENDRING)
    [changed] = await search(client, "/DocumentReference")
    [composition] = await search(client, "/Composition")
    assert changed["id"] == document["id"]  # the same document, updated
    assert (changed["docStatus"], composition["status"]) == ("amended", "amended")
    assert len(await search(client, "/MedicationStatement")) == 6

    await _ok(client, KANSELLERING)
    [revoked] = await search(client, "/DocumentReference")
    [composition] = await search(client, "/Composition")
    assert revoked["id"] == document["id"]
    assert (revoked["status"], composition["status"]) == ("entered-in-error", "entered-in-error")
    assert composition["section"]  # the content is kept, only revoked
    assert _statuses(await search(client, "/Condition")) == {"entered-in-error"}
    assert _statuses(await search(client, "/MedicationStatement")) == {"entered-in-error"}
    assert _statuses(await search(client, "/Observation")) == {"entered-in-error"}
    assert _statuses(await search(client, "/ServiceRequest")) == {"revoked"}
    assert _statuses(await search(client, "/CareTeam")) == {"entered-in-error"}
    assert _statuses(await search(client, "/List")) == {"entered-in-error"}
    [proposal] = await search(client, "/Task")
    assert proposal["status"] == "cancelled"


async def test_endring_without_the_medicines_revokes_them(client: httpx.AsyncClient) -> None:
    await _ok(client, NY)
    endring = re.sub(
        rb"<epj3:Legemiddelinfo .*?</epj3:Legemiddelinfo>", b"", sample(ENDRING), flags=re.DOTALL
    )
    assert b"Legemiddelinfo " not in endring
    status, apprec = await post(client, endring)
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    assert _statuses(await search(client, "/MedicationStatement")) == {"entered-in-error"}
    assert _statuses(await search(client, "/List")) == {"entered-in-error"}
    assert _statuses(await search(client, "/Task")) == {"cancelled"}
    assert _statuses(await search(client, "/Condition")) == {"confirmed"}  # still in the report
    [composition] = await search(client, "/Composition")
    assert composition["status"] == "amended"


async def test_a_plo_message_without_patient_id_is_refused_to_its_sender(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    data = re.sub(
        rb"<Ident>\s*<Id>15076500565</Id>.*?</Ident>",
        b"",
        sample("Pasientlogistikk_Innlagt_pasient_v1-6_Ny.xml"),
        flags=re.DOTALL,
    )
    status, apprec = await post(client, data)
    assert (status, apprec.status) == (422, AppRecStatus.REJECTED)
    assert apprec.original_id == parse_plo(parse_xml(data)).msg_id
    assert apprec.receiver.ident("HER") == "59"  # back to the hospital
    assert apprec.errors[0].code == "E30"
    assert await stored_count(app) == 0
