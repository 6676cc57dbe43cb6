"""Dialogmelding 1.0 and 1.1 through `POST /$kith-message` on SQLite and PostgreSQL: a positive AppRec naming
the MsgId, Communication(s)/CommunicationRequest in the patient's compartment, answers threaded to their
request, a repeat stores nothing new, a malformed Dialogmelding is refused to its sender in Norwegian."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.adapters.kith.apprec import AppRecStatus
from app.adapters.kith.dialog_fhir import CONVERSATION_SYSTEM, DIALOG_KIND_SYSTEM
from app.adapters.kith.dialogmelding import DialogKind, DialogVersion, parse_dialogmelding
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from app.resources.no_basis.identifiers import FNR_SYSTEM
from tests.adapters.kith.conftest import fixture_bytes, legacy_files
from tests.adapters.kith.test_routes_http import post, search, stored_count

REQUEST = "dialogmelding_v1_0_foresporsel.xml"
ANSWER = "dialogmelding_v1_0_svar.xml"
SAMPLES = "samples/Dialogmelding/Dialogmelding-v1-1/*.xml"
STATUS = "Status_paa_henvisning-InnkaltEtterViderehenvisning.xml"


async def _patient_resources(client: httpx.AsyncClient, fnr: str, res_type: str) -> list[dict[str, Any]]:
    (patient,) = await search(client, f"/Patient?identifier={FNR_SYSTEM}|{fnr}")
    return await search(client, f"/Patient/{patient['id']}/{res_type}")


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _kind(resource: dict[str, Any]) -> str | None:
    codings = [c for cc in resource.get("category", []) for c in cc.get("coding", [])]
    return next((c["code"] for c in codings if c.get("system") == DIALOG_KIND_SYSTEM), None)


@pytest.mark.parametrize("path", legacy_files(SAMPLES))
async def test_official_sample_is_stored_in_the_patients_compartment(
    client: httpx.AsyncClient, app: FastAPI, path: Path
) -> None:
    data = _read(path)
    msg = parse_dialogmelding(parse_xml(data, max_bytes=10_000_000))
    status, apprec = await post(client, data)
    assert status == 200
    assert apprec.status is AppRecStatus.OK
    assert apprec.original_id == msg.msg_id
    assert apprec.receiver.ident("HER") == msg.sender.ident("HER")
    communications = await _patient_resources(client, "13116900216", "Communication")
    [note] = [c for c in communications if _kind(c) is not None]
    assert note["payload"][0]["contentString"].strip() == (msg.notes[0].text or "").strip()
    assert {
        "system": CONVERSATION_SYSTEM,
        "value": msg.referral.conversation_id if msg.referral else msg.msg_id,
    } in (note["identifier"])
    assert len(note["payload"]) == 1 + len(msg.attachments)
    if msg.attachments:
        assert note["payload"][1]["contentAttachment"]["data"] == msg.attachments[0].content_base64
    [record] = [c for c in communications if _kind(c) is None]
    assert record["about"] == [{"reference": f"Communication/{note['id']}"}]
    count = await stored_count(app)
    again_status, again = await post(client, data)
    assert (again_status, again.id) == (200, apprec.id)
    assert await stored_count(app) == count


async def test_answer_threads_to_its_request(client: httpx.AsyncClient, app: FastAPI) -> None:
    status, apprec = await post(client, fixture_bytes(REQUEST))
    assert (status, apprec.status, apprec.original_id) == (
        200,
        AppRecStatus.OK,
        parse_dialogmelding(parse_xml(fixture_bytes(REQUEST))).msg_id,
    )
    [request] = await _patient_resources(client, "14835712347", "CommunicationRequest")
    assert _kind(request) == "request"
    assert request["payload"][0]["contentString"].startswith("Vi ber om oppdatert legemiddelliste")
    assert request["occurrencePeriod"] == {"start": "2024-01-01", "end": "2024-09-01"}
    assert request["priority"] == "urgent"
    [request_record] = await _patient_resources(client, "14835712347", "Communication")
    assert request_record["about"] == [{"reference": f"CommunicationRequest/{request['id']}"}]

    status, apprec = await post(client, fixture_bytes(ANSWER))
    assert (status, apprec.status) == (200, AppRecStatus.OK)
    communications = await _patient_resources(client, "14835712347", "Communication")
    [answer] = [c for c in communications if _kind(c) == "answer"]
    assert answer["inResponseTo"] == [{"reference": f"Communication/{request_record['id']}"}]
    assert answer["partOf"] == [{"reference": f"Communication/{request_record['id']}"}]
    assert answer["basedOn"] == [{"reference": f"CommunicationRequest/{request['id']}"}]
    assert answer["payload"][0]["contentString"] == "Legemiddelliste vedlagt. CRP 12, SR 28 (10.09.2024)."
    assert answer["payload"][1]["contentAttachment"]["contentType"] == "text/plain"
    assert answer["note"] == [{"text": "Pasienten er informert."}]


async def test_malformed_dialogmelding_is_refused_to_its_sender_in_norwegian(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    data = fixture_bytes(ANSWER).replace(b"<TemaKodet", b"<Tema2").replace(b"</TemaKodet>", b"</Tema2>")
    data = data.replace(
        b'<Tema2 V="2" DN="Svar p\xc3\xa5 foresp\xc3\xb8rsel" S="2.16.578.1.12.4.1.1.7322"/>', b""
    )
    status, apprec = await post(client, data)
    assert status == 422
    assert apprec.status is AppRecStatus.REJECTED
    assert apprec.original_id == "4d8fab21-3c5e-4a7b-9d2f-6e8a0c1b3d5f"
    assert apprec.receiver.ident("HER") == "8123401"  # the GP's office that sent it
    [error] = apprec.errors
    assert error.code == "T02"
    assert error.details is not None
    assert "TemaKodet" in error.details
    assert "mangler" in error.details  # Norwegian
    assert await stored_count(app) == 0


async def test_dialogmelding_without_patient_id_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    data = fixture_bytes(REQUEST).replace(b'V="FNR"', b'V="XYZ"')
    status, apprec = await post(client, data)
    assert status == 422
    assert [e.code for e in apprec.errors] == ["E36"]
    assert apprec.original_id == "3c7e9a10-2b4d-4f6a-8c1e-5d7f9b0a2c4e"
    assert "14835712347" not in (apprec.errors[0].details or "")
    assert await stored_count(app) == 0


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        pytest.param(
            b"<DateOfBirth>1957-03-14</DateOfBirth>",
            b"<DateOfBirth>14.03.1957</DateOfBirth>",
            "T02",
            id="bad-date",
        ),
        pytest.param(b"<Receiver>", b"<OtherReceiver>", "T02", id="no-receiver"),
        pytest.param(
            b"http://www.kith.no/xmlstds/dialog/2006-10-11",
            b"http://www.kith.no/xmlstds/dialog/1999",
            "T10",
            id="unknown-version",
        ),
    ],
)
async def test_refusal_names_the_message_and_its_sender_when_the_header_can_be_read(
    client: httpx.AsyncClient, app: FastAPI, old: bytes, new: bytes, code: str
) -> None:
    data = fixture_bytes(ANSWER).replace(old, new).replace(new.replace(b"<", b"</"), new.replace(b"<", b"</"))
    if old == b"<Receiver>":
        data = data.replace(b"</Receiver>", b"</OtherReceiver>")
    status, apprec = await post(client, data)
    assert status == 422
    assert apprec.status is AppRecStatus.REJECTED
    assert [e.code for e in apprec.errors] == [code]
    assert apprec.original_id == "4d8fab21-3c5e-4a7b-9d2f-6e8a0c1b3d5f"
    assert apprec.receiver.ident("HER") == "8123401"
    assert await stored_count(app) == 0


# --- out: a Communication written on FHIR for a receiver on the health network -----------------------------

FHIR = {"Content-Type": "application/fhir+json"}
OUTGOING = "http://helsebro.no/fhir/CodeSystem/kith-message|outgoing"


def _answer_on_fhir(
    patient: str, recipient: str, in_response_to: str | None, sender: str | None = None
) -> dict[str, Any]:
    comm: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {"coding": [{"system": DIALOG_KIND_SYSTEM, "code": "answer"}]},
            {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7322", "code": "2", "display": "Svar"}]},
        ],
        "subject": {"reference": patient},
        "topic": {"text": "Blodprøver"},
        "recipient": [{"reference": recipient}],
        "payload": [
            {"contentString": "CRP 12, SR 28."},
            {"contentAttachment": {"contentType": "text/plain", "title": "Svar", "data": "U3Zhcg=="}},
        ],
    }
    if sender is not None:
        comm["sender"] = {"reference": sender}
    if in_response_to is not None:
        comm["inResponseTo"] = [{"reference": in_response_to}]
    return comm


async def test_an_answer_written_on_fhir_is_sent_as_dialogmelding_1_1(
    client: httpx.AsyncClient, app: FastAPI, validator: XsdValidator
) -> None:
    request_msg = parse_dialogmelding(parse_xml(fixture_bytes(REQUEST)))
    assert (await post(client, fixture_bytes(REQUEST)))[0] == 200
    (patient,) = await search(client, f"/Patient?identifier={FNR_SYSTEM}|14835712347")
    (department,) = await search(client, "/Organization?identifier=urn:oid:2.16.578.1.12.4.1.2|8123501")
    (office,) = await search(client, "/Organization?identifier=urn:oid:2.16.578.1.12.4.1.2|8123401")
    [record] = await _patient_resources(client, "14835712347", "Communication")
    comm = _answer_on_fhir(
        f"Patient/{patient['id']}",
        f"Organization/{department['id']}",
        f"Communication/{record['id']}",
        f"Organization/{office['id']}",
    )
    response = await client.post("/Communication", json=comm, headers=FHIR)
    assert response.status_code == 201, response.text
    written = response.json()
    (sent,) = await search(client, f"/Communication?category={OUTGOING}")
    assert sent["status"] == "preparation"
    assert sent["basedOn"] == [{"reference": f"Communication/{written['id']}"}]
    root = parse_xml(base64.b64decode(sent["payload"][0]["contentAttachment"]["data"]))
    assert validator.validate(root).valid
    msg = parse_dialogmelding(root)
    assert (msg.version, msg.kind, msg.msg_type.code) == (
        DialogVersion.V1_1,
        DialogKind.ANSWER,
        "DIALOG_SVAR",
    )
    assert msg.referral is not None
    assert msg.referral.parent_id == request_msg.msg_id
    assert msg.receiver.ident("HER") == "8123500"
    assert msg.sender.ident("HER") == "8123401"
    assert msg.receiver.sub_organisation is not None
    assert msg.receiver.sub_organisation.ident("HER") == "8123501"
    assert msg.patient is not None
    assert msg.patient.idents[0].id == "14835712347"
    assert (msg.notes[0].text, msg.notes[0].topic, msg.notes[0].status.code) == (
        "CRP 12, SR 28.",
        "Blodprøver",
        "2",
    )
    assert msg.attachments[0].content_base64 == "U3Zhcg=="
    assert sent["identifier"][0]["value"] == msg.msg_id


async def test_a_communication_to_an_organisation_without_her_id_is_not_sent(
    client: httpx.AsyncClient,
) -> None:
    org = await client.post(
        "/Organization", json={"resourceType": "Organization", "name": "På FHIR"}, headers=FHIR
    )
    patient = await client.post(
        "/Patient",
        json={"resourceType": "Patient", "identifier": [{"system": FNR_SYSTEM, "value": "14835712347"}]},
        headers=FHIR,
    )
    comm = _answer_on_fhir(f"Patient/{patient.json()['id']}", f"Organization/{org.json()['id']}", None)
    assert (await client.post("/Communication", json=comm, headers=FHIR)).status_code == 201
    assert await search(client, f"/Communication?category={OUTGOING}") == []


async def test_a_communication_that_cannot_be_a_dialogmelding_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    her = {"system": "urn:oid:2.16.578.1.12.4.1.2", "value": "8123501"}
    org = await client.post(
        "/Organization", json={"resourceType": "Organization", "identifier": [her]}, headers=FHIR
    )
    patient = await client.post(
        "/Patient", json={"resourceType": "Patient", "name": [{"family": "Uten"}]}, headers=FHIR
    )
    count = await stored_count(app)
    org_ref = f"Organization/{org.json()['id']}"
    comm = _answer_on_fhir(f"Patient/{patient.json()['id']}", org_ref, None, sender=org_ref)
    response = await client.post("/Communication", json=comm, headers=FHIR)
    assert response.status_code == 422, response.text
    assert "Dialogmelding" in response.text
    assert "patient identifier" in response.text
    assert await stored_count(app) == count


async def test_a_status_message_about_a_received_referral_is_linked_to_it(
    client: httpx.AsyncClient, app: FastAPI, legacy: Path
) -> None:
    referral = fixture_bytes("henvisning_v2_nytilstand.xml")
    assert (await post(client, referral))[0] == 200
    (service_request,) = await search(client, "/ServiceRequest")
    [referral_record] = await search(client, "/Communication")
    status_xml = _read(legacy / "samples/Dialogmelding/Dialogmelding-v1-1" / STATUS)
    for old in (b"810200d0-2d17-11e8-b566-0800200c9a66", b"87ef6130-2d17-11e8-b566-0800200c9a66"):
        status_xml = status_xml.replace(old, b"6f1c2a8e-5b1d-4c3e-9a77-0d2f3b4c5d6e")  # the referral's MsgId
    other_patient = status_xml
    status_xml = status_xml.replace(b"13116900216", b"14835712347")  # the referral's patient
    status, apprec = await post(client, status_xml)
    assert (status, apprec.status) == (200, AppRecStatus.OK)
    [note] = [c for c in await search(client, "/Communication") if _kind(c) == "referral-status"]
    assert note["inResponseTo"] == [{"reference": f"Communication/{referral_record['id']}"}]
    assert note["about"] == [{"reference": f"ServiceRequest/{service_request['id']}"}]
    # the same status for another patient is stored, but not threaded to this patient's referral
    other_patient = other_patient.replace(
        b"797700e0-2d17-11e8-b566-0800200c9a66", b"897700e0-2d17-11e8-b566-0800200c9a66"
    )
    assert (await post(client, other_patient))[0] == 200
    [other] = [c for c in await _patient_resources(client, "13116900216", "Communication") if _kind(c)]
    assert "inResponseTo" not in other
    assert "about" not in other


async def test_an_answer_to_our_own_outgoing_dialogmelding_is_linked_to_it(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    assert (await post(client, fixture_bytes(REQUEST)))[0] == 200
    (patient,) = await search(client, f"/Patient?identifier={FNR_SYSTEM}|14835712347")
    (department,) = await search(client, "/Organization?identifier=urn:oid:2.16.578.1.12.4.1.2|8123501")
    (office,) = await search(client, "/Organization?identifier=urn:oid:2.16.578.1.12.4.1.2|8123401")
    comm = _answer_on_fhir(
        f"Patient/{patient['id']}", f"Organization/{department['id']}", None, f"Organization/{office['id']}"
    )
    assert (await client.post("/Communication", json=comm, headers=FHIR)).status_code == 201
    (sent,) = await search(client, f"/Communication?category={OUTGOING}")
    sent_id = sent["identifier"][0]["value"].encode()
    # the hospital answers our note: a 1.0 answer whose RefToParent is the MsgId we sent
    reply = fixture_bytes(ANSWER).replace(
        b"4d8fab21-3c5e-4a7b-9d2f-6e8a0c1b3d5f", b"5e9fab21-3c5e-4a7b-9d2f-6e8a0c1b3d5f"
    )
    reply = reply.replace(b"3c7e9a10-2b4d-4f6a-8c1e-5d7f9b0a2c4e", sent_id)
    status, apprec = await post(client, reply)
    assert (status, apprec.status) == (200, AppRecStatus.OK)
    [answer] = [
        c for c in await search(client, "/Communication") if _kind(c) == "answer" and "inResponseTo" in c
    ]
    assert answer["inResponseTo"] == [{"reference": f"Communication/{sent['id']}"}]


async def test_a_henvisning_1_1_without_receiver_is_refused_to_its_sender(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    data = fixture_bytes("henvisning_v1_1_ny.xml")
    start, end = data.index(b"<ServProvider>"), data.index(b"</ServProvider>") + len(b"</ServProvider>")
    status, apprec = await post(client, data[:start] + data[end:])
    assert status == 422
    assert apprec.original_id == "1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
    assert apprec.receiver.ident("HER") is not None  # the requester
    assert apprec.sender.name == "Helsebro"  # no receiver in the message: we answer as ourselves
    assert await stored_count(app) == 0
