"""Pasientlogistikk through `POST /$kith-message` on SQLite and PostgreSQL: the stay (Encounter) and the
discharge-ready notice (Task) with its clock, Kansellering, and `GET /Task/$discharge-ready`."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from app.adapters.kith.apprec import AppRecStatus
from app.adapters.plo import clock
from app.adapters.plo.logistics_fhir import DISCHARGE_READY_SYSTEM, STAY_SYSTEM
from tests.adapters.kith.test_routes_http import post, search, stored_count
from tests.adapters.plo.conftest import sample

INNLAGT = "Pasientlogistikk_Innlagt_pasient_v1-6_Ny.xml"
INNLAGT_C = "Pasientlogistikk_Innlagt_pasient_v1-6_Kansellering.xml"
KLAR = "Pasientlogistikk_Utskrivningsklar_pasient_v1-6_Ny.xml"
AVMELDING = "Pasientlogistikk_Avmelding_av_utskrivningsklar_pasient_v1-6_Ny.xml"
UTSKREVET = "Pasientlogistikk_Melding_om_utskrevet_pasient_v1-6_Ny.xml"
DOD = "Pasientlogistikk_Orientering_om_dodsfall_v1-6_Ny.xml"
DOD_C = "Pasientlogistikk_Orientering_om_dodsfall_v1-6_Kansellering.xml"


async def _ok(client: httpx.AsyncClient, name: str) -> None:
    status, apprec = await post(client, sample(name))
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors


async def _notices(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return await search(client, f"/Task?code={clock.TASK_TOKEN}")


async def test_admission_notice_and_discharge(client: httpx.AsyncClient, app: FastAPI) -> None:
    await _ok(client, INNLAGT)
    [stay] = await search(client, "/Encounter")
    assert stay["status"] == "in-progress"
    assert stay["period"]["start"].startswith("2018-01-29T10:00:00")
    assert any(i["system"] == STAY_SYSTEM and i["value"].endswith("/2018-01-29") for i in stay["identifier"])

    await _ok(client, KLAR)
    assert len(await search(client, "/Encounter")) == 1  # the same stay
    [task] = await _notices(client)
    assert task["status"] == "requested"
    assert task["encounter"] == {"reference": f"Encounter/{stay['id']}"}
    owner = (await client.get(f"/{task['owner']['reference']}")).json()
    assert owner["name"] == "Alvdal Kommune"
    notice = clock.notice_of(task)
    assert notice is not None
    assert notice.notice.isoformat() == "2018-01-31"
    assert notice.estimated is True
    assert any(i["system"] == DISCHARGE_READY_SYSTEM for i in task["identifier"])

    await _ok(client, UTSKREVET)
    [stay] = await search(client, "/Encounter")
    assert stay["status"] == "finished"
    assert stay["period"]["end"] == "2018-02-01"
    assert stay["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "1"
    [task] = await _notices(client)
    assert task["status"] == "completed"
    notice = clock.notice_of(task)
    assert notice is not None
    assert notice.ended is not None
    assert notice.ended.isoformat() == "2018-02-01"

    count = await stored_count(app)
    await _ok(client, UTSKREVET)  # a repeat: the same AppRec, nothing new
    assert await stored_count(app) == count


async def test_withdrawal_cancels_the_notice(client: httpx.AsyncClient) -> None:
    await _ok(client, KLAR)
    await _ok(client, AVMELDING)
    [task] = await _notices(client)
    assert task["status"] == "cancelled"
    assert "ikke lenger" in task["statusReason"]["text"]
    notice = clock.notice_of(task)
    assert notice is not None
    assert notice.end_reason == "withdrawn"


async def test_kansellering_of_admission_marks_the_stay_in_error(client: httpx.AsyncClient) -> None:
    await _ok(client, INNLAGT)
    await _ok(client, INNLAGT_C)
    [stay] = await search(client, "/Encounter")
    assert stay["status"] == "entered-in-error"


async def test_death_and_its_kansellering(client: httpx.AsyncClient) -> None:
    await _ok(client, DOD)
    [stay] = await search(client, "/Encounter")
    assert (stay["status"], stay["period"]["end"]) == ("finished", "2018-02-20")
    [patient] = await search(client, "/Patient")
    assert patient["deceasedDateTime"] == "2018-02-20"
    await _ok(client, DOD_C)
    [stay] = await search(client, "/Encounter")
    assert stay["status"] == "in-progress"
    assert "end" not in stay.get("period", {})
    [patient] = await search(client, "/Patient")
    assert "deceasedDateTime" not in patient


async def test_death_of_a_known_patient_is_recorded_on_the_patient(client: httpx.AsyncClient) -> None:
    data = sample(DOD)
    await _ok(client, INNLAGT)  # the Patient exists before the death message
    admitted = (await search(client, "/Patient"))[0]
    status, apprec = await post(client, data)
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    [patient] = await search(client, "/Patient")
    assert patient["id"] == admitted["id"]
    assert patient["deceasedDateTime"] == "2018-02-20"
    assert patient["name"] == admitted["name"]


def _municipalities(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in body["parameter"]:
        if p["name"] == "municipality":
            out.append(
                {part["name"]: part for part in p["part"] if part["name"] != "notice"}
                | {
                    "notice": [
                        {q["name"]: next(v for k, v in q.items() if k.startswith("value")) for q in n["part"]}
                        for n in p["part"]
                        if n["name"] == "notice"
                    ]
                }
            )
    return out


async def test_discharge_ready_operation_counts_days_per_municipality(client: httpx.AsyncClient) -> None:
    await _ok(client, KLAR)
    [task] = await _notices(client)
    owner = task["owner"]["reference"]
    response = await client.get("/Task/$discharge-ready?_since=2018-01-01&today=2018-02-05")
    assert response.status_code == 200, response.text
    [kommune] = _municipalities(response.json())
    assert kommune["municipality"]["valueReference"]["reference"] == owner
    assert (kommune["open"]["valueInteger"], kommune["daysWaiting"]["valueInteger"]) == (1, 5)
    [notice] = kommune["notice"]
    assert notice["noticeDate"] == "2018-01-31"
    assert (notice["daysWaiting"], notice["payableDays"]) == (5, 5)  # 1.-5. February

    # the municipality answers on FHIR: it can receive the patient from 3 February
    answered = {
        **task,
        "businessStatus": {"coding": [{"system": clock.CLOCK_SYSTEM, "code": "can-receive"}]},
        "output": [
            {"type": clock.part_type("answered"), "valueDateTime": "2018-02-01T09:00:00+01:00"},
            {"type": clock.part_type("canReceiveFrom"), "valueDate": "2018-02-03"},
        ],
    }
    put = await client.put(
        f"/Task/{task['id']}", json=answered, headers={"Content-Type": "application/fhir+json"}
    )
    assert put.status_code == 200, put.text
    body = (await client.get(f"/Task/$discharge-ready?municipality={owner}&today=2018-02-05")).json()
    [notice] = _municipalities(body)[0]["notice"]
    assert notice["answer"]["code"] == "can-receive"
    assert notice["canReceiveFrom"] == "2018-02-03"
    assert (notice["daysWaiting"], notice["payableDays"]) == (5, 2)  # 1. and 2. February

    # the hospital's discharge ends the clock and keeps the municipality's answer
    await _ok(client, UTSKREVET)
    body = (await client.get("/Task/$discharge-ready?_since=2018-02-01&today=2018-02-10")).json()
    [notice] = _municipalities(body)[0]["notice"]
    assert (notice["status"], notice["ended"], notice["endReason"]) == (
        "completed",
        "2018-02-01",
        "discharged",
    )
    assert notice["answer"]["code"] == "can-receive"
    assert (notice["daysWaiting"], notice["payableDays"]) == (1, 0)
    assert _municipalities((await client.get("/Task/$discharge-ready?_since=2018-02-02")).json()) == []
    other = await client.get("/Task/$discharge-ready?municipality=Organization/other")
    assert _municipalities(other.json()) == []
    bad = await client.get("/Task/$discharge-ready?_since=yesterday")
    assert bad.status_code == 400


def tilbakemelding_v2_0() -> bytes:
    """The municipality's answer (PLO 2.0 TilbakemeldingUtskrivningsklarPasient, no official sample): the
    1.6 notice turned round (sender <-> receiver), in the 2.0 namespaces, with 2.0 element dates."""
    data = sample(KLAR).decode()
    head, rest = data.split("<Sender>", 1)
    sender, rest = rest.split("</Sender>", 1)
    between, rest = rest.split("<Receiver>", 1)
    receiver, rest = rest.split("</Receiver>", 1)
    data = f"{head}<Sender>{receiver}</Sender>{between}<Receiver>{sender}</Receiver>{rest}"
    data = data.replace("79c55ed0-0692-11e8-b566-0800200c9a66", "5e0c5a3e-2f1b-4c55-9d63-0a1b2c3d4e5f")
    data = data.replace(
        "http://www.kith.no/xmlstds/po/Pasientlogistikk/2012-04-01",
        "http://ehelse.no/xmlstds/po/Pasientlogistikk/2016-05-30",
    )
    data = data.replace(
        "http://www.kith.no/xmlstds/po/poKomponent/2012-04-01",
        "http://ehelse.no/xmlstds/po/poKomponent/2017-11-30",
    )
    data = data.replace("MeldingUtskrivningsklarPasient", "TilbakemeldingUtskrivningsklarPasient")
    data = data.replace(
        '<TidspunktForHendelse V="2018-01-29T10:00:00"/>',
        "<TidspunktForHendelse>2018-01-29T10:00:00</TidspunktForHendelse>",
    )
    data = data.replace(
        '<TidspunktForHendelse V="2018-01-31" />',
        "<TidspunktForHendelse>2018-02-03T00:00:00</TidspunktForHendelse>",
    )
    return data.encode()


async def test_municipality_answer_in_plo_2_0_sets_the_answer(client: httpx.AsyncClient) -> None:
    await _ok(client, KLAR)
    status, apprec = await post(client, tilbakemelding_v2_0())
    assert (status, apprec.status) == (200, AppRecStatus.OK), apprec.errors
    assert apprec.receiver.ident("HER") == "99387"  # back to the municipality that answered
    [task] = await _notices(client)
    assert task["status"] == "requested"
    notice = clock.notice_of(task)
    assert notice is not None
    assert (notice.answer, notice.can_receive_from) == ("can-receive", date(2018, 2, 3))
    assert notice.payable_days(date(2018, 2, 10)) == 2  # 1. and 2. February


async def test_an_answer_to_no_notice_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    status, apprec = await post(client, tilbakemelding_v2_0())
    assert (status, apprec.status) == (422, AppRecStatus.REJECTED)
    assert apprec.errors[0].code == "X99"
    assert await stored_count(app) == 0


async def test_discharge_ready_is_in_the_capability_statement(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    [task] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Task"]
    assert "discharge-ready" in {o["name"] for o in task.get("operation", [])}
