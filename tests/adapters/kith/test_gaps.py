"""Issue 16: referral adapter gaps found with messages from the field, each with its own fixture."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from app.adapters.kith.apprec import AppRecStatus, parse_apprec
from app.adapters.kith.from_fhir import referral_from_bundle
from app.adapters.kith.henvisning import parse_henvisning, serialize_henvisning
from app.adapters.kith.henvisning_v1 import unmapped_v1
from app.adapters.kith.model import Coded, HenvisningVersion, ProfessionalRole, Quantity, ResultKind
from app.adapters.kith.to_fhir import referral_to_bundle
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.no_basis.identifiers import HERID_SYSTEM, HPR_SYSTEM
from app.resources.referrals import workflow
from app.resources.referrals.codes import Decision, Output
from app.resources.referrals.taskjson import output
from tests.adapters.kith.conftest import fixture_bytes

XML = {"Content-Type": "application/xml"}
SIGNED_BY_OTHER = "henvisning_v1_1_signert_av_annen.xml"


async def _search(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    response = await client.get(query)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def _ids(resource: dict[str, Any], system: str) -> list[str]:
    return [i["value"] for i in resource.get("identifier", []) if i.get("system") == system]


# --- 1. the referrer's HPR is merged only onto the same person ---------------------------------------------


def test_referrer_is_not_merged_with_another_sending_doctor() -> None:
    ref = parse_henvisning(fixture_bytes(SIGNED_BY_OTHER))
    assert ref.sender.professional is not None
    assert ref.sender.professional.ident("HER") == "8123702"
    referrer = ref.referrer
    assert referrer is not None
    assert referrer.ident("HPR") == "9900789"
    assert referrer.ident("HER") is None  # the sender's HER-id is another person's
    bundle = referral_to_bundle(ref)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Practitioner" and _ids(resource, HERID_SYSTEM) == ["8123702"]:
            assert _ids(resource, HPR_SYSTEM) == []
            assert entry["request"]["ifNoneExist"].startswith("identifier=urn")
            assert "9900789" not in entry["request"]["ifNoneExist"]


def test_referrer_is_merged_with_the_same_sending_doctor() -> None:
    ref = parse_henvisning(fixture_bytes("henvisning_v1_1_ny.xml"))
    referrer = ref.referrer
    assert referrer is not None
    assert (referrer.ident("HPR"), referrer.ident("HER")) == ("9900789", "8123701")


async def test_referral_signed_by_one_doctor_and_sent_by_another(client: httpx.AsyncClient) -> None:
    message = fixture_bytes(SIGNED_BY_OTHER)
    response = await client.post("/$kith-message", content=message, headers=XML)
    assert response.status_code == 200, response.text
    assert parse_apprec(parse_xml(response.content)).status is AppRecStatus.OK
    (signer,) = await _search(client, f"/Practitioner?identifier={HPR_SYSTEM}|9900789")
    assert signer["name"][0]["family"] == "Lege"
    (sender,) = await _search(client, f"/Practitioner?identifier={HERID_SYSTEM}|8123702")
    assert sender["name"][0]["family"] == "Vikar"
    assert _ids(sender, HPR_SYSTEM) == []
    (sr,) = await _search(client, "/ServiceRequest")
    back = await client.get(f"/ServiceRequest/{sr['id']}/$kith-henvisning?version=2.0")
    assert back.status_code == 200, back.text
    written = parse_henvisning(back.content)
    (responsible,) = [p for p in written.professionals if p.role is ProfessionalRole.REPORT_RESPONSIBLE]
    assert responsible.professional.ident("HPR") == "9900789"
    assert responsible.professional.name.family == "Lege"
    assert written.sender.professional is not None
    assert written.sender.professional.name.family == "Vikar"
    assert written.referrer is not None
    assert written.referrer.ident("HPR") == "9900789"


# --- 2. structured lab results in Henvisning 1.x; what is not mapped gets AppRec status 3 ---------------------

LAB = "henvisning_v1_1_lab.xml"


def test_lab_results_are_parsed() -> None:
    ref = parse_henvisning(fixture_bytes(LAB))
    results = [i.result for i in ref.clinical_items if i.result is not None]
    assert len(results) == 5
    glucose, crp, fev, spiro, xray = results
    assert glucose.kind is ResultKind.NUMERIC
    assert glucose.investigation.code == "NPU02192"
    assert glucose.specs == (Coded(code="P", display="Plasma"),)
    assert glucose.value == Quantity(7.4, "mmol/L")
    assert glucose.investigation_date == datetime(2024, 4, 29, 8, 15)
    assert glucose.comment == "Fastende"
    assert glucose.deviation is not None
    assert glucose.deviation.code == "H"
    assert crp.comparator is not None
    assert crp.comparator.code == "<"
    assert (fev.kind, fev.low, fev.high) == (ResultKind.INTERVAL, Quantity(62, "%"), Quantity(68, "%"))
    assert fev.service_type is not None
    assert spiro.kind is ResultKind.TEXT
    assert spiro.text is not None
    assert spiro.text.text == "Obstruktivt mønster, signifikant reversibilitet."
    assert (xray.kind, xray.date_value) == (ResultKind.DATE, datetime(2024, 3, 12))


def test_lab_results_survive_fhir_and_both_versions() -> None:
    ref = parse_henvisning(fixture_bytes(LAB))
    assert referral_from_bundle(referral_to_bundle(ref)) == ref
    for version in (HenvisningVersion.V1_1, HenvisningVersion.V2_0):
        back = parse_henvisning(serialize_henvisning(ref, version))
        assert back.clinical_items == ref.clinical_items


def test_nothing_unmapped_in_the_own_fixtures() -> None:
    for name in (LAB, "henvisning_v1_1_ny.xml", SIGNED_BY_OTHER):
        assert unmapped_v1(parse_xml(fixture_bytes(name))) == ()


async def test_lab_results_are_stored_and_written_back(client: httpx.AsyncClient) -> None:
    message = fixture_bytes(LAB)
    response = await client.post("/$kith-message", content=message, headers=XML)
    assert response.status_code == 200, response.text
    apprec = parse_apprec(parse_xml(response.content))
    assert (apprec.status, apprec.errors) == (AppRecStatus.OK, ())
    (sr,) = await _search(client, "/ServiceRequest")
    back = await client.get(f"/ServiceRequest/{sr['id']}/$kith-henvisning?version=1.1")
    assert back.status_code == 200, back.text
    assert parse_henvisning(back.content).clinical_items == parse_henvisning(message).clinical_items


async def test_an_element_not_mapped_gets_status_3_naming_it(client: httpx.AsyncClient) -> None:
    message = fixture_bytes(LAB).replace(b"<MsgDescr", b'<Ack V="J" DN="Ja"/>\n\t\t<MsgDescr', 1)
    message = message.replace(b"<OffId>", b"<IdByRequester>J-1234</IdByRequester>\n\t\t\t<OffId>")
    response = await client.post("/$kith-message", content=message, headers=XML)
    assert response.status_code == 200, response.text
    apprec = parse_apprec(parse_xml(response.content))
    assert apprec.status is AppRecStatus.OK_PARTIAL_ERROR
    (error,) = apprec.errors
    assert error.details is not None
    assert "ServReq/Ack" in error.details
    assert "Patient/IdByRequester" in error.details
    assert "J-1234" not in error.details  # names, never values
    assert len(await _search(client, "/ServiceRequest")) == 1


# --- 4. a forwarded referral's seniority date (Volven 9147) goes on the Task and counts in $waiting-times ------

SENIORITY = "henvisning_v2_videre_ansiennitet.xml"
OSLO = ZoneInfo("Europe/Oslo")


def _task(bundle: dict[str, Any]) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = [e["resource"] for e in bundle["entry"]]
    (task,) = [t for t in tasks if t["resourceType"] == "Task"]
    return task


def test_volven_9147_dates_go_on_the_task() -> None:
    task = _task(referral_to_bundle(parse_henvisning(fixture_bytes(SENIORITY))))
    assert output(task, Output.FIRST_RECEIVED) == "2024-09-03"
    assert output(task, Output.WAITING_ENDED) == "2024-09-09"


async def test_waiting_times_and_assessed_in_time_count_from_the_same_receipt(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/$kith-message", content=fixture_bytes(SENIORITY), headers=XML)
    assert response.status_code == 200, response.text
    (task,) = await _search(client, "/Task")
    # received here on Thursday 12 September, assessed Friday 20 September: within 10 working days of our
    # own receipt, but not of the seniority date (Tuesday 3 September, so the deadline is 17 September)
    task = workflow.receive(task, at=datetime(2024, 9, 12, 9, tzinfo=OSLO))
    stored = await client.put(f"/Task/{task['id']}", json=task)
    assert stored.status_code == 200, stored.text
    task = workflow.assess(task, decision=Decision.NOT_ENTITLED, at=datetime(2024, 9, 20, 14, tzinfo=OSLO))
    stored = await client.put(f"/Task/{task['id']}", json=task)
    assert stored.status_code == 200, stored.text
    assert output(stored.json(), Output.ASSESSED_IN_TIME) is False
    body = (await client.get("/Task/$waiting-times?today=2024-09-30")).json()
    (organisation,) = [p for p in body["parameter"] if p["name"] == "organization"]
    parts = {p["name"]: p for p in organisation["part"]}
    assert parts["received"]["valueInteger"] == 1
    assert parts["assessedLate"]["valueInteger"] == 1  # as the Task says
    assert parts["shareInTime"]["valueDecimal"] == 0


# --- 5. a message with the same document id after a cancellation is refused ---------------------------------

NEW = "henvisning_v1_1_ny.xml"
CANCEL = "henvisning_v1_1_kansellering.xml"
CHANGE_AFTER_CANCEL = "henvisning_v1_1_endring_etter_kansellering.xml"


async def _statuses(client: httpx.AsyncClient) -> tuple[str, str]:
    (sr,) = await _search(client, "/ServiceRequest")
    (task,) = await _search(client, "/Task")
    return sr["status"], task["status"]


async def test_a_cancelled_referral_is_not_reopened_by_a_later_message(client: httpx.AsyncClient) -> None:
    for name in (NEW, CANCEL):
        response = await client.post("/$kith-message", content=fixture_bytes(name), headers=XML)
        assert response.status_code == 200, response.text
    assert await _statuses(client) == ("revoked", "cancelled")
    new_again = fixture_bytes(NEW).replace(
        b"1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f", b"8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0e1f"
    )
    for message in (fixture_bytes(CHANGE_AFTER_CANCEL), new_again):
        response = await client.post("/$kith-message", content=message, headers=XML)
        assert response.status_code == 422, response.text
        apprec = parse_apprec(parse_xml(response.content))
        assert apprec.status is AppRecStatus.REJECTED
        (error,) = apprec.errors
        assert error.details is not None
        assert "kansellert" in error.details
        assert await _statuses(client) == ("revoked", "cancelled")  # both stay as they were
    # the cancellation itself, sent again with a new MsgId, changes nothing either
    again = fixture_bytes(CANCEL).replace(
        b"6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d", b"9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
    )
    response = await client.post("/$kith-message", content=again, headers=XML)
    assert await _statuses(client) == ("revoked", "cancelled")
