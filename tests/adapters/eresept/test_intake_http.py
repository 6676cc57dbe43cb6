"""e-resept messages through `POST /$kith-message` on SQLite and PostgreSQL: every message answered with an
AppRec, idempotent by MsgId, the prescription's life (M1, M10, M5, M7) applied to one MedicationRequest, and
what cannot be applied refused with nothing stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.adapters.eresept.to_fhir import EXT_DELETED_IN_RF, PRESCRIPTION_ID_SYSTEM
from app.adapters.kith.apprec import AppRec, AppRecStatus, parse_apprec
from app.adapters.kith.xmlsafe import parse_xml
from tests.adapters.eresept.conftest import fixture_bytes
from tests.adapters.kith.test_routes_http import XML, search, stored_count

RECEIVED = "http://helsebro.no/fhir/CodeSystem/kith-message|received"
PLL = "Rekvirent rekvirerer kun resept og leverer ikke PLL"
FIXTURE_RX = "6f1c2a90-3b1e-4a57-9d55-2f0c8e7a1b23"


async def post(client: httpx.AsyncClient, data: bytes) -> tuple[int, AppRec, bytes]:
    response = await client.post("/$kith-message", content=data, headers=XML)
    assert response.headers["content-type"].startswith("application/xml"), response.text
    return response.status_code, parse_apprec(parse_xml(response.content)), response.content


async def accepted(client: httpx.AsyncClient, data: bytes) -> AppRec:
    status, apprec, _ = await post(client, data)
    assert (status, apprec.status, apprec.errors) == (200, AppRecStatus.OK, ()), apprec
    return apprec


async def prescription(client: httpx.AsyncClient, rx_id: str) -> dict[str, Any]:
    (request,) = await search(client, f"/MedicationRequest?identifier={PRESCRIPTION_ID_SYSTEM}|{rx_id}")
    return request


async def records(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return await search(client, f"/Communication?category={RECEIVED}&_sort=_lastUpdated")


async def test_prescription_dispense_and_recall_from_own_fixtures(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    m1 = fixture_bytes("m1_merkevare.xml")
    apprec = await accepted(client, m1)
    assert apprec.original_msg_type.code == "ERM1"
    assert apprec.original_id == FIXTURE_RX
    request = await prescription(client, FIXTURE_RX)
    assert request["status"] == "active"
    (record,) = await records(client)
    assert record["about"] == [{"reference": f"MedicationRequest/{request['id']}"}]
    assert record["subject"] == request["subject"]
    assert record["sender"] == request["requester"]
    assert record["topic"]["coding"][0]["code"] == "ERM1"

    count = await stored_count(app)
    first = (await client.post("/$kith-message", content=m1, headers=XML)).content
    _, _, again = await post(client, m1)
    assert again == first  # the stored receipt, byte for byte
    assert await stored_count(app) == count

    await accepted(client, fixture_bytes("m10_utlevering.xml"))
    (dispense,) = await search(client, f"/MedicationDispense?prescription=MedicationRequest/{request['id']}")
    assert dispense["status"] == "completed"
    assert dispense["subject"] == request["subject"]  # the same patient, found again by fødselsnummer
    assert dispense["authorizingPrescription"][0]["identifier"]["value"] == FIXTURE_RX

    await accepted(client, fixture_bytes("m5_tilbakekalling.xml"))
    recalled = await prescription(client, FIXTURE_RX)
    assert recalled["status"] == "stopped"  # partly dispensed: the rest is withdrawn
    assert recalled["statusReason"]["coding"][0]["system"] == "urn:oid:2.16.578.1.12.4.1.1.7500"
    assert recalled["meta"]["versionId"] == "2"
    assert [r["topic"]["coding"][0]["code"] for r in await records(client)] == ["ERM1", "ERM10", "ERM5"]


async def test_recall_of_an_unknown_prescription_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    count = await stored_count(app)
    status, apprec, _ = await post(client, fixture_bytes("m5_tilbakekalling.xml"))
    assert status == 422
    assert apprec.status is AppRecStatus.REJECTED
    assert [e.code for e in apprec.errors] == ["X99"]
    assert apprec.original_msg_type.code == "ERM5"
    assert await stored_count(app) == count


async def test_an_e_resept_message_not_received_here_is_t10(client: httpx.AsyncClient, app: FastAPI) -> None:
    m1 = fixture_bytes("m1_merkevare.xml")
    m3 = m1.replace(b'<Type V="ERM1" DN="Resept"/>', b'<Type V="ERM3" DN="Resept (M3)"/>')
    assert m3 != m1
    count = await stored_count(app)
    status, apprec, _ = await post(client, m3)
    assert status == 422
    assert [e.code for e in apprec.errors] == ["T10"]
    assert apprec.original_id == FIXTURE_RX  # addressed to the sender, naming its message
    assert await stored_count(app) == count


async def test_official_samples_make_one_prescription_history(
    client: httpx.AsyncClient, legacy: Path
) -> None:
    """The official chain: M1, its recall (M5), Reseptformidleren's deletion (M7, naming the M5 by its
    ConversationRef) and a dispense report (M10) on the same ReseptId."""
    samples = legacy / "samples" / "eresept"
    rx_id = "c2883dc2-8eef-4b8e-a80f-167f858425f7"
    await accepted(client, (samples / PLL / "M1 Resept.xml").read_bytes())
    await accepted(client, (samples / PLL / "M5 Tilbakekalling av resept.xml").read_bytes())
    recalled = await prescription(client, rx_id)
    assert recalled["status"] == "cancelled"  # nothing dispensed when it was recalled

    await accepted(client, (samples / PLL / "M7 Slettet resept i RF.xml").read_bytes())
    deleted = await prescription(client, rx_id)
    assert deleted["status"] == "cancelled"
    assert [e["url"] for e in deleted["extension"]].count(EXT_DELETED_IN_RF) == 1
    assert deleted["meta"]["versionId"] == "3"

    await accepted(
        client, (samples / "Ekspedering og utlevering" / "M10 Utleveringsrapport.xml").read_bytes()
    )
    (dispense,) = await search(client, f"/MedicationDispense?prescription=MedicationRequest/{deleted['id']}")
    assert dispense["subject"] == deleted["subject"]
    assert len(await records(client)) == 4


async def test_a_deletion_answering_no_recall_held_here_is_refused(
    client: httpx.AsyncClient, app: FastAPI, legacy: Path
) -> None:
    m7 = (legacy / "samples" / "eresept" / PLL / "M7 Slettet resept i RF.xml").read_bytes()
    count = await stored_count(app)
    status, apprec, _ = await post(client, m7)
    assert (status, [e.code for e in apprec.errors]) == (422, ["X99"])
    assert await stored_count(app) == count
