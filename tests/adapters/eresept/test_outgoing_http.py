"""Prescriptions written on FHIR for a pharmacy become e-resept M1 messages (outgoing Communications), on
SQLite and PostgreSQL: the clinical content survives FHIR -> M1, the M1 validates, the answers that come back
(the pharmacy's M10) find the request, and what cannot be an M1 is refused with nothing stored."""

from __future__ import annotations

import base64
import copy
import dataclasses
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.adapters.eresept.messages import build_m1, build_m5, parse_m1, parse_m5
from app.adapters.eresept.outgoing import CATEGORY_SYSTEM, M1_TITLE
from app.adapters.eresept.to_fhir import EXT_DELETED_IN_RF, PRESCRIPTION_ID_SYSTEM, prescription_to_bundle
from app.adapters.kith.xsd import XsdValidator
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.eresept.test_fhir import _clinical
from tests.adapters.eresept.test_intake_http import PLL, accepted
from tests.adapters.kith.test_routes_http import search, stored_count

FHIR = {"Content-Type": "application/fhir+json"}
OUTGOING = "http://helsebro.no/fhir/CodeSystem/kith-message|outgoing"
SOURCE = parse_m1(fixture_bytes("m1_merkevare.xml"))


def written_on_fhir(category: str | None = "community", status: str = "active") -> dict[str, Any]:
    """The fixture's prescription as a FHIR-speaking EPJ writes it: a transaction of the request and what it
    refers to, without a ReseptId (that is the e-resept side's)."""
    bundle = copy.deepcopy(prescription_to_bundle(SOURCE))
    request = bundle["entry"][-1]
    resource = request["resource"]
    resource["identifier"] = [i for i in resource["identifier"] if i["system"] != PRESCRIPTION_ID_SYSTEM]
    resource["status"] = status
    if category is not None:
        resource["category"] = [{"coding": [{"system": CATEGORY_SYSTEM, "code": category}]}]
    request["request"] = {"method": "POST", "url": "MedicationRequest"}
    return bundle


async def outgoing(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return await search(client, f"/Communication?category={OUTGOING}")


def m1_of(record: dict[str, Any]) -> bytes:
    (payload,) = record["payload"]
    assert payload["contentAttachment"]["title"] == M1_TITLE
    return base64.b64decode(payload["contentAttachment"]["data"])


async def test_a_community_prescription_is_sent_as_an_m1_with_its_content(
    client: httpx.AsyncClient, validator: XsdValidator
) -> None:
    response = await client.post("/", json=written_on_fhir(), headers=FHIR)
    assert response.status_code == 200, response.text
    request = response.json()["entry"][-1]["resource"]
    (record,) = await outgoing(client)
    assert record["status"] == "preparation"
    assert record["about"] == [{"reference": f"MedicationRequest/{request['id']}"}]
    assert record["subject"] == request["subject"]
    assert record["topic"]["coding"][0]["code"] == "ERM1"
    assert record["recipient"][0]["display"] == "Reseptformidleren"

    xml = m1_of(record)
    result = validator.validate(build_m1(parse_m1(xml)))
    assert result.valid, result.errors
    sent = parse_m1(xml)
    rx_id = record["identifier"][0]["value"]
    assert sent.envelope.msg_id == rx_id  # the M1's MsgId is the ReseptId
    # patient, prescriber (HPR, name), medicine, dosage, quantity, reiterations, dates: all as prescribed
    expected = dataclasses.replace(SOURCE, envelope=dataclasses.replace(SOURCE.envelope, msg_id=rx_id))
    assert _clinical(sent) == _clinical(expected)

    # the pharmacy's dispense report names the ReseptId: it finds the request written on FHIR
    m10 = fixture_bytes("m10_utlevering.xml").replace(b"6f1c2a90-3b1e-4a57-9d55-2f0c8e7a1b23", rx_id.encode())
    await accepted(client, m10)
    (dispense,) = await search(client, f"/MedicationDispense?prescription=MedicationRequest/{request['id']}")
    assert dispense["authorizingPrescription"][0]["identifier"]["value"] == rx_id


async def test_the_m1_is_sent_once_when_the_request_becomes_active(client: httpx.AsyncClient) -> None:
    response = await client.post("/", json=written_on_fhir(status="draft"), headers=FHIR)
    assert response.status_code == 200, response.text
    request = response.json()["entry"][-1]["resource"]
    assert await outgoing(client) == []  # a draft is not sent
    for note in ("activated", "a note added later"):
        changed = {**request, "status": "active", "note": [{"text": note}]}
        updated = await client.put(f"/MedicationRequest/{request['id']}", json=changed, headers=FHIR)
        assert updated.status_code == 200, updated.text
        request = updated.json()
    assert len(await outgoing(client)) == 1


async def test_an_inpatient_order_stays_on_fhir(client: httpx.AsyncClient) -> None:
    for category in ("inpatient", None):
        response = await client.post("/", json=written_on_fhir(category), headers=FHIR)
        assert response.status_code == 200, response.text
    assert await outgoing(client) == []


async def test_a_community_prescription_that_cannot_be_an_m1_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    bundle = written_on_fhir()
    resource = bundle["entry"][-1]["resource"]
    del resource["dispenseRequest"]["validityPeriod"]["end"]
    count = await stored_count(app)
    response = await client.post("/", json=bundle, headers=FHIR)
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "business-rule"
    assert "validityPeriod.end" in issue["diagnostics"]
    assert await stored_count(app) == count  # nothing of the transaction is kept


WRONG_MEDICINE = {"system": "urn:oid:2.16.578.1.12.4.1.1.7500", "code": "1", "display": "Feil legemiddel"}


async def test_cancelling_a_sent_prescription_recalls_it_with_an_m5(
    client: httpx.AsyncClient, validator: XsdValidator, legacy: Path
) -> None:
    response = await client.post("/", json=written_on_fhir(), headers=FHIR)
    assert response.status_code == 200, response.text
    request = response.json()["entry"][-1]["resource"]
    [m1_record] = await outgoing(client)
    rx_id = m1_record["identifier"][0]["value"]

    no_reason = {**request, "status": "cancelled"}
    refused = await client.put(f"/MedicationRequest/{request['id']}", json=no_reason, headers=FHIR)
    assert refused.status_code == 422, refused.text
    assert "7500" in refused.json()["issue"][0]["diagnostics"]
    assert (await client.get(f"/MedicationRequest/{request['id']}")).json()["status"] == "active"

    cancelled = {**request, "status": "cancelled", "statusReason": {"coding": [WRONG_MEDICINE]}}
    updated = await client.put(f"/MedicationRequest/{request['id']}", json=cancelled, headers=FHIR)
    assert updated.status_code == 200, updated.text
    [m5_record] = [r for r in await outgoing(client) if r["topic"]["coding"][0]["code"] == "ERM5"]
    assert m5_record["basedOn"] == [{"reference": f"MedicationRequest/{request['id']}"}]
    xml = base64.b64decode(m5_record["payload"][0]["contentAttachment"]["data"])
    recall = parse_m5(xml)
    assert (recall.prescription_id, recall.reason.code) == (rx_id, "1")
    result = validator.validate(build_m5(recall))
    assert result.valid, result.errors

    # Reseptformidleren's M7 answering that M5 marks the request deleted there
    m7 = (legacy / "samples" / "eresept" / PLL / "M7 Slettet resept i RF.xml").read_bytes()
    m7 = m7.replace(b"097d012e-39a8-470d-836b-1680fc8e9ab6", recall.envelope.msg_id.encode())
    await accepted(client, m7)
    deleted = (await client.get(f"/MedicationRequest/{request['id']}")).json()
    assert EXT_DELETED_IN_RF in [e["url"] for e in deleted["extension"]]
