"""Issue 16, gap 7: an assessment conversation is not offered over a granted right, and a bad fødselsnummer
is answered with a patient-identifier error in Norwegian."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from app.adapters.kith.apprec import AppRecStatus, parse_apprec
from app.adapters.kith.errors import AppRecError
from app.adapters.kith.xmlsafe import parse_xml
from app.resources.referrals.codes import BusinessStatus
from app.resources.referrals.taskjson import business_status
from app.resources.referrals.workflow import (
    IllegalTransition,
    accept,
    offer_assessment_conversation,
    validate_update,
)
from tests.adapters.kith.conftest import fixture_bytes
from tests.resources.referrals.builders import assessed_right, day

XML = {"Content-Type": "application/xml"}


def test_no_assessment_conversation_after_a_right_is_granted() -> None:
    task = assessed_right()
    with pytest.raises(IllegalTransition, match="right"):
        offer_assessment_conversation(task, at=day(3), earliest=date(2025, 3, 10), latest=date(2025, 3, 14))
    assert business_status(accept(task, at=day(3))) == BusinessStatus.RETT  # the right still stands


def test_a_put_that_replaces_a_right_by_a_conversation_is_refused() -> None:
    old = assessed_right()
    new = {**old, "businessStatus": {"coding": [{"code": BusinessStatus.VURDERINGSSAMTALE_TILBUDT}]}}
    new["businessStatus"]["coding"][0]["system"] = old["businessStatus"]["coding"][0]["system"]
    with pytest.raises(IllegalTransition, match="right"):
        validate_update(old, new)


async def test_a_wrong_fodselsnummer_is_a_patient_identifier_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/$kith-message", content=fixture_bytes("ugyldig_fnr_henvisning_v1_1.xml"), headers=XML
    )
    assert response.status_code == 422, response.text
    apprec = parse_apprec(parse_xml(response.content))
    assert apprec.status is AppRecStatus.REJECTED
    (error,) = apprec.errors
    assert error.code == AppRecError.PATIENT_FNR_WRONG.value
    assert error.details == "pasientens fødselsnummer er ugyldig (kontrollsiffer)"
    assert "02918445696" not in response.text
    assert (await client.get("/ServiceRequest")).json().get("total", 0) == 0


async def _post(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/$kith-message", content=fixture_bytes(name), headers=XML)
    assert response.status_code == 200, response.text


async def test_a_cancellation_keeps_the_clinical_content(client: httpx.AsyncClient) -> None:
    await _post(client, "henvisning_v1_1_ny.xml")
    (before,) = (await client.get("/ServiceRequest")).json()["entry"]
    await _post(client, "henvisning_v1_1_kansellering_kort.xml")
    (after,) = (await client.get("/ServiceRequest")).json()["entry"]
    sr, old = after["resource"], before["resource"]
    assert sr["status"] == "revoked"
    for element in ("reasonCode", "note", "supportingInfo", "code", "priority", "subject", "requester"):
        assert sr.get(element) == old.get(element), element
    clinical = "http://helsebro.no/fhir/StructureDefinition/kith-clinical-item"
    assert [e for e in sr["extension"] if e["url"] == clinical] == [
        e for e in old["extension"] if e["url"] == clinical
    ]
    comments = [
        e["valueString"]
        for e in sr["extension"]
        if e["url"] == "http://helsebro.no/fhir/StructureDefinition/kith-request-comment"
    ]
    assert comments == ["Pasienten er henvist et annet sted"]  # why it was cancelled
    (task,) = (await client.get("/Task")).json()["entry"]
    assert task["resource"]["status"] == "cancelled"
