"""Pasientlogistikk through `POST /$kith-message` on SQLite and PostgreSQL: the stay (Encounter) and the
discharge-ready notice (Task) with its clock, Kansellering, and `GET /Task/$discharge-ready`."""

from __future__ import annotations

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
    await _ok(client, DOD_C)
    [stay] = await search(client, "/Encounter")
    assert stay["status"] == "in-progress"
    assert "end" not in stay.get("period", {})
