"""The pack keeps a pregnancy's due dates and plan (flow.py) and answers `$next`, through the REST API on
SQLite and PostgreSQL: registered with an LMP, dated again by the ultrasound, consultations held."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from app.resources.pregnancy_card.codes import PROGRAMME_URL
from app.resources.pregnancy_card.examples import consultation, episode, observation, pregnancy, quantity
from app.resources.pregnancy_card.flow import DERIVED_SYSTEM
from tests.fhir.bundles import put_each, send
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.pregnancy_card.builders import care_setting, patient


async def stored(client: httpx.AsyncClient, *resources: dict[str, Any]) -> None:
    response = await send(client, put_each(*resources))
    assert response.status_code == 200, response.text


async def search(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    response = await client.get(query)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


async def due_dates(client: httpx.AsyncClient, eid: str) -> dict[str, str]:
    found = await search(
        client, f"/Observation?identifier={DERIVED_SYSTEM}|&episode-of-care=EpisodeOfCare/{eid}"
    )
    return {o["identifier"][0]["value"].rsplit("-", 1)[-1]: o["valueDateTime"] for o in found}


async def plan_of(client: httpx.AsyncClient, eid: str) -> dict[str, Any]:
    plans = await search(client, f"/CarePlan?episode-of-care=EpisodeOfCare/{eid}")
    assert len(plans) == 1
    assert plans[0]["instantiatesCanonical"] == [PROGRAMME_URL]
    return plans[0]


def window(plan: dict[str, Any], activity: str) -> tuple[str, str]:
    for a in plan["activity"]:
        if any(c["code"] == activity for c in a["detail"]["code"]["coding"]):
            period = a["detail"]["scheduledPeriod"]
            return period["start"], period["end"]
    raise AssertionError(f"no activity {activity}")


def parameters(body: dict[str, Any], name: str) -> list[dict[str, str]]:
    return [
        {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in item["part"]}
        for item in body["parameter"]
        if item["name"] == name
    ]


async def test_the_due_date_and_plan_follow_the_dating(client: httpx.AsyncClient) -> None:
    await stored(
        client,
        *care_setting(),
        patient("mari"),
        episode("p1", "mari", "2026-08-20"),
        pregnancy("p1", "mari", "2026-07-01"),
    )
    assert await search(client, "/CarePlan?episode-of-care=EpisodeOfCare/p1") == []  # not dated yet

    # The GP records the LMP and a 30-day cycle in one transaction: dated once, from both.
    await stored(
        client,
        observation("p1-lmp", "p1", "mari", "lmp", "2026-08-20", {"valueDateTime": "2026-07-01"}),
        observation("p1-cycle", "p1", "mari", "cycle_length", "2026-08-20", quantity(30, "d")),
    )
    assert await due_dates(client, "p1") == {"edd_lmp": "2027-04-09", "edd": "2027-04-09"}
    plan = await plan_of(client, "p1")
    assert window(plan, "uke-24") == ("2026-12-11", "2026-12-24")  # 23+0..24+6 of a pregnancy due 2027-04-09
    version = plan["meta"]["versionId"]

    # Recording the same again changes nothing the pack keeps.
    await stored(
        client, observation("p1-lmp", "p1", "mari", "lmp", "2026-08-20", {"valueDateTime": "2026-07-01"})
    )
    assert (await plan_of(client, "p1"))["meta"]["versionId"] == version

    # The early ultrasound dates the pregnancy three days earlier: the ultrasound wins, the plan moves.
    await stored(
        client,
        observation("p1-us", "p1", "mari", "edd_ultrasound", "2026-09-22", {"valueDateTime": "2027-04-06"}),
    )
    assert await due_dates(client, "p1") == {"edd_lmp": "2027-04-09", "edd": "2027-04-06"}
    edd = (await search(client, f"/Observation?identifier={DERIVED_SYSTEM}|p1-edd"))[0]
    assert edd["derivedFrom"] == [{"reference": "Observation/p1-us"}]
    moved = await plan_of(client, "p1")
    assert window(moved, "uke-24") == ("2026-12-08", "2026-12-21")

    # A held consultation is kept when the plan moves again; extra follow-up added by the midwife stays.
    moved["activity"][0]["detail"]["status"] = "completed"
    extra = {
        "detail": {
            "status": "scheduled",
            "description": "Ekstra kontroll (blodtrykk)",
            "scheduledPeriod": {"start": "2027-02-01", "end": "2027-02-03"},
        }
    }
    moved["activity"].append(extra)
    response = await client.put(f"/CarePlan/{moved['id']}", content=orjson.dumps(moved), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    await stored(
        client,
        observation("p1-us", "p1", "mari", "edd_ultrasound", "2026-09-22", {"valueDateTime": "2027-04-07"}),
    )
    again = await plan_of(client, "p1")
    assert window(again, "uke-24") == ("2026-12-09", "2026-12-22")
    assert again["activity"][0]["detail"]["status"] == "completed"
    assert again["activity"][-1] == extra

    # Without the ultrasound the LMP dates it again.
    assert (await client.delete("/Observation/p1-us")).status_code in (200, 204)
    assert (await due_dates(client, "p1"))["edd"] == "2027-04-09"


async def test_next_tells_what_is_due_overdue_and_next(client: httpx.AsyncClient) -> None:
    await stored(
        client,
        *care_setting(),
        patient("mari"),
        episode("p1", "mari", "2026-08-20"),
        pregnancy("p1", "mari", "2026-07-01"),
        observation("p1-lmp", "p1", "mari", "lmp", "2026-08-20", {"valueDateTime": "2026-07-01"}),
        consultation("p1-c1", "p1", "mari", "2026-08-20", "Organization/gp-office", "Legekontoret"),
    )
    plan = await plan_of(client, "p1")  # due 2027-04-07 (28-day cycle)
    response = await client.get(f"/CarePlan/{plan['id']}/$next", params={"date": "2026-10-20"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Parameters"
    assert {"name": "dueDate", "valueDate": "2027-04-07"} in body["parameter"]
    # 2026-10-20 is 15+6: the first consultation was held on 2026-08-20 (7+1), the early ultrasound's
    # window (11+0–13+6) has passed without one, and the routine ultrasound (17–19) is next.
    assert [p["activity"] for p in parameters(body, "overdue")] == ["tidlig-ultralyd"]
    assert parameters(body, "due") == []
    assert [p["activity"] for p in parameters(body, "upcoming")] == ["ultralyd-17-19"]
    assert [p["status"] for p in parameters(body, "overdue") + parameters(body, "upcoming")] == [
        "not-started",
        "not-started",
    ]
    # Booked in the plan: the item says so.
    for activity in plan["activity"]:
        if activity["detail"]["code"]["coding"][0]["code"] == "ultralyd-17-19":
            activity["detail"]["status"] = "scheduled"
    put = await client.put(f"/CarePlan/{plan['id']}", content=orjson.dumps(plan), headers=FHIR_JSON)
    assert put.status_code == 200, put.text
    booked = await client.get(f"/CarePlan/{plan['id']}/$next", params={"date": "2026-10-20"})
    upcoming = parameters(booked.json(), "upcoming")
    assert [(p["activity"], p["status"]) for p in upcoming] == [("ultralyd-17-19", "scheduled")]
    bad = await client.get(f"/CarePlan/{plan['id']}/$next", params={"date": "soon"})
    assert bad.status_code == 400


async def test_a_due_date_recorded_without_the_lmp_dates_the_pregnancy(client: httpx.AsyncClient) -> None:
    """An EPJ that sends only its own due date by LMP (11779-6): the plan and the due date in force follow
    it, derived from that Observation."""
    await stored(
        client,
        *care_setting(),
        patient("mari"),
        episode("p1", "mari", "2026-08-20"),
        pregnancy("p1", "mari", "2026-07-01"),
        observation("p1-edd-lmp", "p1", "mari", "edd_lmp", "2026-08-20", {"valueDateTime": "2027-04-07"}),
    )
    edd = (await search(client, f"/Observation?identifier={DERIVED_SYSTEM}|p1-edd"))[0]
    assert edd["valueDateTime"] == "2027-04-07"
    assert edd["derivedFrom"] == [{"reference": "Observation/p1-edd-lmp"}]
    assert (await plan_of(client, "p1"))["description"] == "Termin 2027-04-07"
