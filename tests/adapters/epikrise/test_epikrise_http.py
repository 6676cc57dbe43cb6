"""Epikrise 1.0, 1.1 and 1.2 through `POST /$kith-message` on SQLite and PostgreSQL: a positive AppRec naming
the MsgId; Composition, DocumentReference, Encounter, Conditions, proposed MedicationStatements and
follow-up Tasks in the patient's compartment; a repeat stores nothing new; a change updates and revokes what
it no longer has; a cancellation revokes; an invalid Epikrise is refused to its sender, in Norwegian."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.epikrise.parse import parse_epikrise
from app.adapters.epikrise.to_fhir import DISCHARGE_SUMMARY, FOLLOW_UP, PROPOSAL
from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import FNR_SYSTEM
from tests.adapters.kith.conftest import fixture_bytes, legacy_files
from tests.adapters.kith.test_routes_http import post, search, stored_count

SAMPLES = "samples/Epikrise/Epikrise_v1-2/*.xml"
V1_0 = "epikrise_v1_0_ny.xml"
V1_1 = "epikrise_v1_1_ny.xml"
FIXTURE_FNR = "14835712347"


async def compartment(client: httpx.AsyncClient, fnr: str, res_type: str) -> list[dict[str, Any]]:
    (patient,) = await search(client, f"/Patient?identifier={FNR_SYSTEM}|{fnr}")
    if res_type == "Task":  # not in the Patient compartment in R4: by Task.for
        return await search(client, f"/Task?patient=Patient/{patient['id']}&_count=100")
    return await search(client, f"/Patient/{patient['id']}/{res_type}?_count=100")


def message(source: Path | str) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else fixture_bytes(source)


@pytest.mark.parametrize("source", [V1_0, V1_1, *legacy_files(SAMPLES)])
async def test_epikrise_is_stored_in_the_patients_compartment(
    client: httpx.AsyncClient, app: FastAPI, source: Path | str
) -> None:
    data = message(source)
    msg = parse_epikrise(parse_xml(data))
    fnr = msg.patient.idents[0].id
    status, apprec = await post(client, data)
    assert status == 200, apprec
    assert apprec.status is AppRecStatus.OK
    assert apprec.original_id == msg.msg_id
    assert apprec.receiver.ident("HER") == msg.sender.ident("HER")
    (composition,) = await compartment(client, fnr, "Composition")
    assert composition["type"]["coding"] == [DISCHARGE_SUMMARY]
    assert composition["status"] == "final"
    (document,) = await compartment(client, fnr, "DocumentReference")
    assert document["content"][0]["attachment"]["contentType"] == "application/xml"
    encounters = await compartment(client, fnr, "Encounter")
    assert len(encounters) == len(msg.stays)
    conditions = await compartment(client, fnr, "Condition")
    assert sorted(c["code"]["coding"][0]["code"] for c in conditions) == sorted(
        d.concept.code or "" for s in msg.stays for d in s.diagnoses
    )
    statements = await compartment(client, fnr, "MedicationStatement")
    assert len(statements) == sum(len(s.medications) for s in msg.stays)
    assert all(s["status"] == "intended" and s["category"]["coding"] == [PROPOSAL] for s in statements)
    tasks = [t for t in await compartment(client, fnr, "Task") if t["code"]["coding"] == [FOLLOW_UP]]
    assert len(tasks) == 1
    assert tasks[0]["status"] == "requested"
    owner = await client.get(f"/{tasks[0]['owner']['reference']}")
    # (the official sample gives the GP's office the hospital's HER-id: the Organization is shared)
    assert msg.receiver.ident("HER") in [i["value"] for i in owner.json()["identifier"]]
    count = await stored_count(app)
    again_status, again = await post(client, data)
    assert (again_status, again.id) == (200, apprec.id)
    assert await stored_count(app) == count
