"""The audit trail through HTTP, on SQLite and PostgreSQL: stored in its own append-only tables, served
as AuditEvent (read, vread, history, search with every supported parameter and paging), and who sees
what (system clients everything, a citizen their own part, personnel nothing)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.resources.no_basis.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from app.security.audit import AUDIT_FLAG_SYSTEM, CLIENT_ID_SYSTEM
from app.security.tables import audit_event, audit_patient
from app.store.tables import resource
from tests.security.helpers import World, auth_header
from tests.security.scenario import GP_HPR, GP_OFFICE_ORGNR, TUVA_FNR

TAG = f"{AUDIT_FLAG_SYSTEM}|emergency-access"
GP_READS = "entity=Observation/kari-bp&subtype=read"  # the seeding wrote (and audited) kari-bp too


def request_id(event: dict[str, Any]) -> str:
    (entity,) = [e for e in event["entity"] if e["type"]["code"] == "XrequestId"]
    value: str = entity["what"]["identifier"]["value"]
    return value


def patients_of(event: dict[str, Any]) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", []) if e.get("role", {}).get("code") == "1"]


async def found(world: World, query: str, who: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = await world.http.get(f"/AuditEvent?{query}", headers=who or world.system)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


async def ids(world: World, query: str, who: dict[str, str] | None = None) -> set[str]:
    return {e["id"] for e in await found(world, query, who)}


async def test_audit_rows_land_in_the_trail_tables(world: World, secure_app: FastAPI) -> None:
    database = secure_app.state.database
    async with database.engine.connect() as conn:
        before = (await conn.execute(select(func.count()).select_from(audit_event))).scalar_one()
    response = await world.http.get("/Observation/kari-bp", headers={**world.gp, "x-request-id": "rq-land"})
    assert response.status_code == 200
    async with database.engine.connect() as conn:
        after = (await conn.execute(select(func.count()).select_from(audit_event))).scalar_one()
        row = (await conn.execute(select(audit_event).where(audit_event.c.request_id == "rq-land"))).one()
        about = (
            await conn.execute(select(audit_patient.c.patient_id).where(audit_patient.c.event_id == row.id))
        ).all()
        old_style = select(func.count()).select_from(resource).where(resource.c.res_type == "AuditEvent")
        assert (await conn.execute(old_style)).scalar_one() == 0
    assert after == before + 1
    assert (row.action, row.subtype, row.outcome, row.who_value, row.orgnr) == (
        "R",
        "read",
        "0",
        GP_HPR,
        GP_OFFICE_ORGNR,
    )
    assert (row.entity_type, row.entity_id) == ("Observation", "kari-bp")
    assert [a[0] for a in about] == ["kari"]
    served = (await world.http.get(f"/AuditEvent/{row.id}", headers=world.system)).content
    assert served == row.content  # read serves the stored bytes


async def test_every_search_parameter_finds_its_events(world: World) -> None:
    gp = {**world.gp, "x-request-id": "rq-gp-read"}
    assert (await world.http.get("/Observation/kari-bp", headers=gp)).status_code == 200
    assert (await world.http.get("/Observation?patient=Patient/ola", headers=world.gp)).status_code == 200
    assert (await world.http.get("/Observation/nils-bp", headers=world.gp)).status_code == 403  # refused
    emergency = {**world.other, "nhn-emergency-reason": quote("Bevisstløs")}
    assert (await world.http.get("/Observation/nils-bp", headers=emergency)).status_code == 200
    everything = await found(world, "_count=500")
    by_request = {request_id(e): e for e in everything}
    read = by_request["rq-gp-read"]
    all_ids = {e["id"] for e in everything}

    assert await ids(world, "patient=Patient/kari") >= {read["id"]}
    assert read["id"] in await ids(world, "patient=kari")
    assert read["id"] not in await ids(world, "patient=Patient/nils")
    assert read["id"] in await ids(world, "patient=http://fhir.test/Patient/kari")
    assert await ids(world, "patient=http://elsewhere.test/fhir/Patient/kari") == set()
    assert await ids(world, GP_READS) == {read["id"]}
    assert read["id"] in await ids(world, "entity=Patient/kari")
    assert await ids(world, "entity:identifier=rq-gp-read") == {read["id"]}
    assert read["id"] in await ids(world, f"agent:identifier={HPR_SYSTEM}|{GP_HPR}")
    assert read["id"] in await ids(world, f"agent:identifier={GP_HPR}")
    assert read["id"] in await ids(world, f"agent:identifier={ORGNR_SYSTEM}|{GP_OFFICE_ORGNR}")
    assert read["id"] in await ids(world, f"agent:identifier={CLIENT_ID_SYSTEM}|helsebro-dev-client")
    assert await ids(world, "agent=Practitioner/gp") == set()  # agents are recorded by identifier only
    assert read["id"] in await ids(world, f"altid=hpr-{GP_HPR}")
    assert await ids(world, "type=rest&_count=500") == all_ids
    assert await ids(world, "type=http://other.test|rest") == set()
    searches = await found(world, "subtype=search-type")
    assert searches
    assert all(e["subtype"][0]["code"] == "search-type" for e in searches)
    assert read["id"] in await ids(world, "subtype=http://hl7.org/fhir/restful-interaction|read,vread")
    assert {e["action"] for e in await found(world, "action=E")} == {"E"}
    others = {e["action"] for e in await found(world, "action:not=E&_count=500")}
    assert "R" in others
    assert "E" not in others
    refused = await found(world, "outcome=4")
    assert [patients_of(e) for e in refused] == [["Patient/nils"]]
    assert read["id"] in await ids(world, "outcome=0")
    flagged = await found(world, f"_tag={TAG}")
    assert [patients_of(e) for e in flagged] == [["Patient/nils"]]
    assert flagged[0]["meta"]["tag"][0]["code"] == "emergency-access"
    assert await ids(world, f"_tag:not={TAG}&_count=500") == all_ids - {flagged[0]["id"]}
    assert await ids(world, f"_id={read['id']},unknown") == {read["id"]}

    today = datetime.now(UTC).date()
    assert await ids(world, f"date=ge{today - timedelta(days=1)}&_count=500") == all_ids
    assert await ids(world, f"date=lt{today - timedelta(days=1)}") == set()
    assert await ids(world, f"date={today}&_count=500") == all_ids
    assert await ids(world, f"_lastUpdated=gt{read['recorded']}&patient=kari") == set()
    assert await ids(world, f"date=ge{read['recorded']}&date=le{read['recorded']}&patient=kari") == {
        read["id"]
    }
    bad = await world.http.get("/AuditEvent?date=yesterday", headers=world.system)
    assert bad.status_code == 400


async def test_paging_sorting_totals_and_unknown_parameters(world: World) -> None:
    for _ in range(4):
        assert (await world.http.get("/Observation/kari-bp", headers=world.gp)).status_code == 200
    everything = await found(world, f"{GP_READS}&_count=100")
    assert len(everything) == 4
    ascending = [e["id"] for e in everything]
    newest_first = [e["id"] for e in await found(world, f"{GP_READS}&_sort=-date")]
    assert newest_first == ascending[::-1]
    assert [e["recorded"] for e in everything] == sorted(e["recorded"] for e in everything)

    seen: list[str] = []
    url: str | None = f"/AuditEvent?{GP_READS}&_count=3&_total=accurate"
    while url:
        page = (await world.http.get(url, headers=world.system)).json()
        assert page["total"] == 4
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == ascending
    counted = (await world.http.get(f"/AuditEvent?{GP_READS}&_summary=count", headers=world.system)).json()
    assert counted["total"] == 4
    assert "entry" not in counted or counted["entry"] == []
    no_total = (await world.http.get(f"/AuditEvent?{GP_READS}&_total=none", headers=world.system)).json()
    assert "total" not in no_total

    lenient = (await world.http.get(f"/AuditEvent?{GP_READS}&shoe-size=44", headers=world.system)).json()
    (outcome,) = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert "shoe-size" in outcome["resource"]["issue"][0]["diagnostics"]
    assert len([e for e in lenient["entry"] if e["search"]["mode"] == "match"]) == 4
    strict = {**world.system, "Prefer": "handling=strict"}
    assert (await world.http.get("/AuditEvent?shoe-size=44", headers=strict)).status_code == 400
    assert (await world.http.get("/AuditEvent?_sort=outcome", headers=world.system)).status_code == 400


async def test_one_version_history_and_no_writes(world: World) -> None:
    assert (await world.http.get("/Observation/kari-bp", headers=world.gp)).status_code == 200
    (event,) = await found(world, GP_READS)
    url = f"/AuditEvent/{event['id']}"
    read = await world.http.get(url, headers=world.system)
    assert read.status_code == 200
    assert read.headers["etag"] == 'W/"1"'
    assert (await world.http.get(f"{url}/_history/1", headers=world.system)).json() == event
    assert (await world.http.get(f"{url}/_history/2", headers=world.system)).status_code == 404
    history = (await world.http.get(f"{url}/_history", headers=world.system)).json()
    assert history["type"] == "history"
    assert [e["resource"]["id"] for e in history["entry"]] == [event["id"]]
    type_history = (await world.http.get("/AuditEvent/_history?_count=1", headers=world.system)).json()
    assert type_history["total"] >= 1
    assert len(type_history["entry"]) == 1
    assert (await world.http.get("/AuditEvent/unknown-id", headers=world.system)).status_code == 404
    assert (await world.http.put(url, json=event, headers=world.system)).status_code == 403
    assert (await world.http.delete(url, headers=world.system)).status_code == 403
    assert (await world.http.get(url, headers=world.system)).status_code == 200


@pytest.fixture
def tuva(mint: Callable[..., str]) -> dict[str, str]:
    return auth_header(mint(subject="tuva", scopes="patient/*.rs", pid=TUVA_FNR))


async def test_a_citizen_sees_only_their_own_part_of_an_event_about_several_patients(
    world: World, tuva: dict[str, str]
) -> None:
    """Hole 8: the GP's search touched Kari and Tuva; each of them sees the event without the other."""
    query = "/Observation?patient=Patient/kari,Patient/tuva&_count=10"
    assert (await world.http.get(query, headers={**world.gp, "x-request-id": "rq-both"})).status_code == 200
    (full,) = await found(world, "entity:identifier=rq-both")
    assert sorted(patients_of(full)) == ["Patient/kari", "Patient/tuva"]
    (query_entity,) = [e for e in full["entity"] if e.get("role", {}).get("code") == "24"]
    assert b"tuva" in base64.b64decode(query_entity["query"])

    for who, own, other in ((tuva, "tuva", "kari"), (world.kari, "kari", "tuva")):
        (shown,) = await found(world, f"patient={own}&entity:identifier=rq-both", who)
        read = await world.http.get(f"/AuditEvent/{full['id']}", headers=who)
        assert read.status_code == 200
        assert read.json() == shown
        assert patients_of(shown) == [f"Patient/{own}"]
        assert not [e for e in shown["entity"] if e.get("role", {}).get("code") == "24"]
        assert other.encode() not in read.content
        assert request_id(shown) == "rq-both"
        assert shown["agent"] == full["agent"]  # who looked is the point of the trail
    # An event about the citizen alone is served as stored.
    assert (
        await world.http.get("/Observation/kari-bp", headers={**world.gp, "x-request-id": "rq-k"})
    ).status_code == 200
    (own_only,) = await found(world, "entity:identifier=rq-k", world.kari)
    (as_stored,) = await found(world, "entity:identifier=rq-k")
    assert own_only == as_stored


async def test_who_sees_which_events(world: World, tuva: dict[str, str]) -> None:
    assert (await world.http.get("/Observation/kari-bp", headers=world.gp)).status_code == 200
    assert (await world.http.get("/Observation/ola-temp", headers=world.gp)).status_code == 200
    assert (await world.http.get("/Observation/nils-bp", headers=world.system)).status_code == 200
    every = await ids(world, "_count=500")
    about = {p: await ids(world, f"patient={p}&_count=500") for p in ("kari", "ola", "tuva", "nils")}
    assert about["nils"]
    # Kari: her own events and her child Ola's (under 12), also without naming a patient.
    assert await ids(world, "_count=500", world.kari) == about["kari"] | about["ola"]
    assert await ids(world, "patient=nils", world.kari) == set()
    assert await ids(world, "_count=500", tuva) == about["tuva"]  # 15: her mother no longer sees hers
    kari_compartment = await world.http.get("/Patient/kari/AuditEvent?_count=500", headers=world.kari)
    assert {e["resource"]["id"] for e in kari_compartment.json()["entry"]} == about["kari"]
    for nils_event in about["nils"]:
        assert (await world.http.get(f"/AuditEvent/{nils_event}", headers=world.kari)).status_code == 404
    # Personnel never see the audit trail through the clinical API, not even their own reads.
    assert await ids(world, "_count=500", world.gp) == set()
    for event_id in every:
        assert (await world.http.get(f"/AuditEvent/{event_id}", headers=world.gp)).status_code == 404
    counted = await world.http.get("/AuditEvent?_summary=count", headers=world.kari)
    assert counted.json()["total"] == len(about["kari"] | about["ola"])
    # Looking at the trail is not itself audited.
    assert await ids(world, "_count=500") == every


async def test_a_batch_reads_and_searches_the_trail(world: World) -> None:
    assert (await world.http.get("/Observation/kari-bp", headers=world.gp)).status_code == 200
    (event,) = await found(world, GP_READS)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"AuditEvent/{event['id']}"}},
            {"request": {"method": "GET", "url": f"AuditEvent?{GP_READS}"}},
        ],
    }
    response = await world.http.post("/", json=batch, headers=world.system)
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["resource"] == event
    assert [e["resource"]["id"] for e in second["resource"]["entry"]] == [event["id"]]


async def test_everything_leaves_the_audit_trail_out_unless_asked(world: World) -> None:
    # Each $everything is audited; the trail of who saw the record is not the record itself.
    for _ in range(3):
        reply = await world.http.get("/Patient/kari/$everything?_count=500", headers=world.system)
        assert reply.status_code == 200, reply.text
        types = {e["resource"]["resourceType"] for e in reply.json()["entry"]}
        assert {"Patient", "Observation"} <= types
        assert "AuditEvent" not in types
    asked = await world.http.get(
        "/Patient/kari/$everything?_type=AuditEvent&_count=500", headers=world.system
    )
    assert asked.status_code == 200, asked.text
    audited = [e["resource"] for e in asked.json()["entry"] if e["search"]["mode"] == "match"]
    assert len(audited) >= 3
    assert {e["resourceType"] for e in audited} == {"AuditEvent"}
    assert all("Patient/kari" in patients_of(e) for e in audited)
    # Among other types it would have been left out without a word: refused instead.
    for path in ("/Patient/kari/$everything?_type=AuditEvent,Observation", "/?_type=AuditEvent,Observation"):
        mixed = await world.http.get(path, headers=world.system)
        assert mixed.status_code == 400, mixed.text
        assert "on its own" in mixed.json()["issue"][0]["diagnostics"]
    # A system search without _type covers the record's types, not the trail.
    every = await world.http.get("/?_count=500", headers=world.system)
    assert every.status_code == 200, every.text
    assert "AuditEvent" not in {e["resource"]["resourceType"] for e in every.json()["entry"]}
