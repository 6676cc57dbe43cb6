"""Dialogmelding status messages to referrers that are not on FHIR: which steps are news (pure), and through
HTTP on SQLite and PostgreSQL: the outgoing Communication stored with the step, its XML, and the referrer's
AppRec closing it."""

from __future__ import annotations

import base64
from datetime import date, timedelta
from typing import Any

import httpx
import orjson

from app.adapters.kith.apprec import AppRecErrorItem, AppRecStatus, ReceivedMessage, build_apprec, receipt_for
from app.adapters.kith.dialogmelding import Dialogmelding, ReferralStatus, parse_dialogmelding
from app.adapters.kith.errors import AppRecError
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.status_messages import StatusNews, status_news
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.kith.xsd import XsdValidator
from app.resources.referrals import workflow
from app.resources.referrals.codes import Decision, Priority, RejectionReason
from tests.adapters.kith.conftest import fixture_bytes
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.referrals import builders as b
from tests.resources.referrals.test_operations_http import parameters, referral_bundle

XML = {"Content-Type": "application/xml"}
OUTGOING = "category=http://helsebro.no/fhir/CodeSystem/kith-message|outgoing"
OWNER = {"reference": "Organization/dps"}

# --- which steps are news (pure) --------------------------------------------------------------------------


def test_receipt_decision_forwarding_and_rejection_are_news() -> None:
    received = b.received()
    assert status_news(b.new_task(), received) == StatusNews(ReferralStatus.RECEIVED)
    right = b.assessed_right()
    news = status_news(received, right)
    assert news is not None
    assert news.status is ReferralStatus.RIGHT_TO_CARE
    assert news.deadline is not None
    assert status_news(received, b.forwarded()) == StatusNews(ReferralStatus.FORWARDED)
    assert status_news(b.assessed_not_entitled(), b.rejected()) == StatusNews(ReferralStatus.NOT_ENTITLED)
    offered = status_news(b.assessed_needs_conversation(), b.conversation_offered())
    assert offered == StatusNews(ReferralStatus.ASSESSMENT_CONVERSATION)


def test_assessment_without_decision_hold_and_resume_are_not_news() -> None:
    received = b.received()
    undecided = workflow.assess(received, decision=Decision.NEEDS_CONVERSATION, at=b.day(2))
    assert status_news(received, undecided) is None
    accepted = b.accepted()
    assert status_news(accepted, b.on_hold()) is None
    assert status_news(accepted, accepted) is None


def test_appointment_news_names_the_appointment() -> None:
    news = status_news(b.accepted(), b.appointment_given())
    assert news is not None
    assert news.status is ReferralStatus.APPOINTMENT_GIVEN
    assert news.appointment is not None
    assert news.appointment.startswith("Appointment/")


# --- through HTTP -------------------------------------------------------------------------------------------


async def _outgoing(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(f"/Communication?{OUTGOING}&_sort=_lastUpdated")
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def _message(record: dict[str, Any]) -> tuple[bytes, Dialogmelding]:
    (payload,) = [p for p in record["payload"] if p["contentAttachment"]["title"] == "Dialogmelding"]
    xml = base64.b64decode(payload["contentAttachment"]["data"])
    return xml, parse_dialogmelding(parse_xml(xml))


async def _task_step(client: httpx.AsyncClient, task_id: str, action: str, body: dict[str, Any]) -> None:
    response = await client.post(f"/Task/{task_id}/${action}", content=orjson.dumps(body), headers=FHIR_JSON)
    assert response.status_code == 200, response.text


async def test_kith_referral_steps_send_dialogmelding_and_apprec_closes_it(client: httpx.AsyncClient) -> None:
    message = fixture_bytes("henvisning_v2_nytilstand.xml")
    referral = parse_henvisning(message)
    assert (await client.post("/$kith-message", content=message, headers=XML)).status_code == 200
    task = (await client.get("/Task")).json()["entry"][0]["resource"]
    owner = task["owner"]

    await _task_step(client, task["id"], "receive", parameters(owner=owner))
    deadline = (date.today() + timedelta(days=40)).isoformat()
    decision = parameters(
        decision=Decision.RIGHT.value, priority=Priority.ROUTINE.value, careDeadline=deadline
    )
    await _task_step(client, task["id"], "assess", decision)

    first, second = await _outgoing(client)
    assert first["status"] == second["status"] == "preparation"
    assert first["basedOn"] == [{"reference": f"Task/{task['id']}"}]
    assert first["subject"] == task["for"]
    xml, received = _message(first)
    assert received.notes[0].status == ReferralStatus.RECEIVED.coded
    assert received.sender.ident("HER") == referral.receiver.ident("HER")  # from the hospital
    assert received.receiver.ident("HER") == referral.sender.ident("HER")  # to the GP's office
    assert received.referral is not None
    assert received.referral.parent_id == referral.msg_id
    assert received.patient is not None
    assert received.patient.idents == referral.patient.idents
    _, right = _message(second)
    assert right.notes[0].status == ReferralStatus.RIGHT_TO_CARE.coded
    assert f"Frist for start helsehjelp: {date.fromisoformat(deadline):%d.%m.%Y}" in (
        right.notes[0].text or ""
    )

    # the GP's system answers the first message with an OK AppRec and the second with a refusal
    ok = to_bytes(
        build_apprec(
            receipt_for(
                ReceivedMessage(
                    received.msg_type, received.gen_date, received.msg_id, received.sender, received.receiver
                ),
                AppRecStatus.OK,
            )
        )
    )
    answer = await client.post("/$kith-message", content=ok, headers=XML)
    assert answer.status_code == 204, answer.text
    refusal = receipt_for(
        ReceivedMessage(right.msg_type, right.gen_date, right.msg_id, right.sender, right.receiver),
        AppRecStatus.REJECTED,
        (AppRecErrorItem.of(AppRecError.PATIENT_UNKNOWN),),
    )
    assert (
        await client.post("/$kith-message", content=to_bytes(build_apprec(refusal)), headers=XML)
    ).status_code == 204
    first, second = await _outgoing(client)
    assert first["status"] == "completed"
    assert second["status"] == "not-done"
    assert "E35" in second["statusReason"]["text"]
    assert xml == _message(first)[0]  # the message itself is kept as it was sent


async def test_apprec_for_an_unknown_message_is_404(client: httpx.AsyncClient) -> None:
    referral = parse_henvisning(fixture_bytes("henvisning_v2_nytilstand.xml"))
    stray = receipt_for(ReceivedMessage.from_referral(referral), AppRecStatus.OK)
    response = await client.post("/$kith-message", content=to_bytes(build_apprec(stray)), headers=XML)
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_referrals_not_received_as_kith_messages_send_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post("/", content=orjson.dumps(referral_bundle()), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    await _task_step(client, "task", "receive", parameters(owner=OWNER))
    reject = parameters(decision=Decision.NOT_ENTITLED.value)
    await _task_step(client, "task", "assess", reject)
    await _task_step(client, "task", "reject", parameters(reason=RejectionReason.NO_NEED.value))
    assert await _outgoing(client) == []


async def test_status_message_validates_against_the_official_schema(
    client: httpx.AsyncClient, validator: XsdValidator
) -> None:
    message = fixture_bytes("henvisning_v2_nytilstand.xml")
    assert (await client.post("/$kith-message", content=message, headers=XML)).status_code == 200
    task = (await client.get("/Task")).json()["entry"][0]["resource"]
    await _task_step(client, task["id"], "receive", parameters(owner=task["owner"]))
    (record,) = await _outgoing(client)
    xml, _ = _message(record)
    result = validator.validate(parse_xml(xml))
    assert result.valid, result.errors or result.reason
