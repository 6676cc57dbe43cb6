"""The access policy through the HTTP API: care relations, emergency access, citizens and proxies,
consent blocks and reservations, scopes, and the audit rows each access leaves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from app.security.audit import AUDIT_FLAG_SYSTEM
from app.security.facts import PROXY
from app.store.search_templates import Template, TemplateCache
from tests.security.helpers import World, auth_header, ids
from tests.security.scenario import (
    GP_HPR,
    GP_OFFICE_ORGNR,
    HOSPITAL_HPR,
    KARI_FNR,
    OTHER_HPR,
    consent,
    ref,
    reservation,
)


async def test_personnel_without_care_relation_get_403_and_an_audit_row(world: World) -> None:
    response = await world.http.get("/Observation/kari-bp", headers=world.other)
    assert response.status_code == 403
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "care relation" in outcome["issue"][0]["diagnostics"]
    denied = await world.audit("patient=Patient/kari&outcome=4")
    assert any(
        any(a.get("who", {}).get("identifier", {}).get("value") == OTHER_HPR for a in event["agent"])
        for event in denied
    )


async def test_the_regular_gp_and_the_treating_hospital_have_access(world: World) -> None:
    for who in (world.gp, world.hospital):
        response = await world.http.get("/Observation/kari-bp", headers=who)
        assert response.status_code == 200, response.text
    events = await world.audit("patient=Patient/kari&outcome=0&action=R")
    readers = {
        a["who"]["identifier"]["value"]
        for e in events
        for a in e["agent"]
        if "identifier" in a.get("who", {})
    }
    assert {GP_HPR, HOSPITAL_HPR} <= readers


async def test_emergency_access_is_granted_time_limited_and_flagged(world: World) -> None:
    # Header values are ASCII: non-ASCII reasons are sent percent-encoded (UTF-8).
    emergency = {**world.other, "nhn-emergency-reason": quote("Bevisstløs pasient i akuttmottak")}
    response = await world.http.get("/Observation/kari-bp", headers=emergency)
    assert response.status_code == 200, response.text
    # The grant lasts: the next request needs no reason, and is flagged too.
    again = await world.http.get("/Patient/kari", headers=world.other)
    assert again.status_code == 200
    flagged = await world.audit(f"_tag={AUDIT_FLAG_SYSTEM}|emergency-access")
    assert len(flagged) == 2
    assert all(e["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT" for e in flagged)
    details = [d for e in flagged for ent in e["entity"] for d in ent.get("detail", [])]
    assert any(d.get("valueString") == "Bevisstløs pasient i akuttmottak" for d in details)
    # Granted for Kari only.
    assert (await world.http.get("/Observation/nils-bp", headers=world.other)).status_code == 403


async def test_emergency_access_on_everything(world: World) -> None:
    assert (await world.http.get("/Patient/nils/$everything", headers=world.gp)).status_code == 403
    emergency = {**world.gp, "nhn-emergency-reason": "Akutt forverring"}
    response = await world.http.get("/Patient/nils/$everything", headers=emergency)
    assert response.status_code == 200
    assert {"Patient/nils", "Observation/nils-bp"} <= ids(response.json())
    flagged = await world.audit(f"_tag={AUDIT_FLAG_SYSTEM}|emergency-access&patient=Patient/nils")
    assert len(flagged) == 1


async def test_a_citizen_sees_their_own_data_and_their_young_childs(world: World) -> None:
    assert (await world.http.get("/Observation/kari-bp", headers=world.kari)).status_code == 200
    assert (await world.http.get("/Observation/ola-temp", headers=world.kari)).status_code == 200
    # Not the neighbour's, and not the 15-year-old's (no default parental access from 12).
    assert (await world.http.get("/Observation/nils-bp", headers=world.kari)).status_code == 403
    assert (await world.http.get("/Observation/tuva-temp", headers=world.kari)).status_code == 403
    found = await world.http.get("/Observation?_total=accurate", headers=world.kari)
    assert ids(found.json()) == {"Observation/kari-bp", "Observation/ola-temp"}
    assert found.json()["total"] == 2
    patients = await world.http.get("/Patient", headers=world.kari)
    assert ids(patients.json()) == {"Patient/kari", "Patient/ola"}
    assert (await world.http.get("/Patient/nils/$everything", headers=world.kari)).status_code == 403


async def test_a_proxy_fullmakt_gives_access_while_it_is_active(world: World) -> None:
    assert (await world.http.get("/Observation/nils-bp", headers=world.kari)).status_code == 403
    fullmakt = consent(
        "nils-authorises-kari",
        "nils",
        PROXY,
        period={"start": "2020-01-01"},
        actor=[
            {
                "role": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "POWATT"}
                    ]
                },
                "reference": {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": KARI_FNR}},
            }
        ],
    )
    assert (await world.put(fullmakt, world.nils)).status_code == 201
    assert (await world.http.get("/Observation/nils-bp", headers=world.kari)).status_code == 200
    fullmakt["status"] = "inactive"
    assert (await world.put(fullmakt, world.nils)).status_code == 200
    assert (await world.http.get("/Observation/nils-bp", headers=world.kari)).status_code == 403


async def test_a_blocked_document_is_invisible_to_the_blocked_organisation(world: World) -> None:
    note = "DocumentReference/kari-psych-note"
    # The hospital has a care relation with Kari, so everything else is visible to it...
    assert (
        await world.http.get("/DocumentReference/kari-discharge", headers=world.hospital)
    ).status_code == 200
    # ...but not the blocked note: read, vread, instance/type/system history, search, count, includes.
    read = await world.http.get(f"/{note}", headers=world.hospital)
    assert read.status_code == 404
    assert (await world.http.get(f"/{note}/_history/1", headers=world.hospital)).status_code == 404
    assert (await world.http.get(f"/{note}/_history", headers=world.hospital)).status_code == 404
    for path in ("/DocumentReference/_history", "/_history"):
        history = await world.http.get(path, headers=world.hospital)
        assert history.status_code == 200
        assert note not in ids_of_history(history.json())
    search = await world.http.get(
        "/DocumentReference?patient=Patient/kari&_total=accurate", headers=world.hospital
    )
    assert ids(search.json()) == {"DocumentReference/kari-discharge"}
    assert search.json()["total"] == 1
    included = await world.http.get(
        "/Observation?_id=kari-bp&_include=Observation:derived-from", headers=world.hospital
    )
    assert ids(included.json(), "include") == set()
    revincluded = await world.http.get(
        "/Encounter?_id=kari-admission&_revinclude=DocumentReference:encounter", headers=world.hospital
    )
    assert ids(revincluded.json(), "include") == set()
    everything = await world.http.get("/Patient/kari/$everything?_count=100", headers=world.hospital)
    assert note not in ids(everything.json())
    assert "Observation/kari-bp" in ids(everything.json())
    # Another organisation with a care relation (the GP) is not blocked.
    assert (await world.http.get(f"/{note}", headers=world.gp)).status_code == 200
    gp_everything = await world.http.get("/Patient/kari/$everything?_count=100", headers=world.gp)
    assert note in ids(gp_everything.json())
    # The denied read is in the audit log.
    denied = await world.audit("patient=Patient/kari&outcome=4")
    assert any(e.get("outcomeDesc") == "blocked by consent" for e in denied)


def ids_of_history(bundle: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if "resource" in e
    }


async def test_a_reservation_hides_core_journal_content_except_own_entries(world: World) -> None:
    condition = {
        "resourceType": "Condition",
        "id": "kari-diabetes",
        "subject": ref("Patient/kari"),
        "code": {"text": "Diabetes type 2"},
    }
    assert (await world.put(condition)).status_code == 201
    assert (await world.put(reservation("kari"), world.kari)).status_code == 201
    assert (await world.http.get("/Condition/kari-diabetes", headers=world.hospital)).status_code == 403
    own = {**condition, "id": "kari-hospital-diagnosis", "code": {"text": "Brudd i håndledd"}}
    assert (await world.http.post("/Condition", json=own, headers=world.hospital)).status_code == 201
    found = await world.http.get("/Condition?patient=Patient/kari", headers=world.hospital)
    assert [e["resource"]["code"]["text"] for e in found.json()["entry"]] == ["Brudd i håndledd"]
    # Not core-journal content: still visible. And Kari herself sees everything.
    assert (await world.http.get("/Observation/kari-bp", headers=world.hospital)).status_code == 200
    mine = await world.http.get("/Condition", headers=world.kari)
    assert len(ids(mine.json())) == 2


async def test_writes_need_a_write_scope_and_a_care_relation(world: World, mint: Callable[..., str]) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Puls"},
        "subject": ref("Patient/kari"),
    }
    refused = await world.http.post("/Observation", json=observation, headers=world.other)
    assert refused.status_code == 403
    created = await world.http.post("/Observation", json=observation, headers=world.gp)
    assert created.status_code == 201
    everything = await world.http.get("/Observation?code:text=Puls&_total=accurate", headers=world.system)
    assert everything.json()["total"] == 1  # the refused create left nothing behind
    read_only = auth_header(
        mint(subject="gp", scopes="user/*.rs", hpr=GP_HPR, orgnr=GP_OFFICE_ORGNR, category="LE")
    )
    assert (await world.http.post("/Observation", json=observation, headers=read_only)).status_code == 403
    # Updating a resource you cannot see is refused too.
    bp = (await world.http.get("/Observation/nils-bp", headers=world.system)).json()
    assert (await world.http.put("/Observation/nils-bp", json=bp, headers=world.gp)).status_code == 403


async def test_scopes_limit_types(world: World, mint: Callable[..., str]) -> None:
    observations_only = auth_header(mint(subject="kari", scopes="patient/Observation.rs", pid=KARI_FNR))
    assert (await world.http.get("/Observation/kari-bp", headers=observations_only)).status_code == 200
    assert (await world.http.get("/Patient/kari", headers=observations_only)).status_code == 403
    assert (await world.http.get("/Condition", headers=observations_only)).status_code == 403
    everything = await world.http.get("/Patient/kari/$everything", headers=observations_only)
    assert everything.status_code == 200
    assert {t.split("/")[0] for t in ids(everything.json())} == {"Observation"}


async def test_audit_events_cannot_be_changed_and_citizens_see_who_looked(world: World) -> None:
    assert (await world.http.get("/Observation/kari-bp", headers=world.gp)).status_code == 200
    mine = await world.http.get("/AuditEvent?patient=Patient/kari&_count=200", headers=world.kari)
    assert mine.status_code == 200
    events = [e["resource"] for e in mine.json()["entry"]]
    who = {
        a["who"]["identifier"]["value"]
        for e in events
        for a in e["agent"]
        if "identifier" in a.get("who", {})
    }
    assert GP_HPR in who
    event = events[0]
    for who_header in (world.kari, world.system, world.gp):
        assert (
            await world.http.put(f"/AuditEvent/{event['id']}", json=event, headers=who_header)
        ).status_code == 403
        assert (await world.http.delete(f"/AuditEvent/{event['id']}", headers=who_header)).status_code == 403
    created = {k: v for k, v in event.items() if k not in ("id", "meta")}
    assert (await world.http.post("/AuditEvent", json=created, headers=world.system)).status_code == 403
    # Nils sees nothing about Kari; personnel do not read the audit trail through the clinical API.
    others = await world.http.get("/AuditEvent?patient=Patient/kari", headers=world.nils)
    assert ids(others.json()) == set()
    personnel = await world.http.get("/AuditEvent", headers=world.gp)
    assert personnel.status_code == 200
    assert ids(personnel.json()) == set()


async def test_a_launch_context_limits_every_search_to_that_patient(
    world: World, mint: Callable[..., str]
) -> None:
    """A SMART launch context (the token's `patient`) narrows what the principal could otherwise see."""
    system_for_kari = auth_header(
        mint(subject="app", scopes="system/*.rs", client_id="portal-backend", patient="kari")
    )
    everything_system = await world.http.get("/Observation?_count=200", headers=world.system)
    assert any(i.startswith("Observation/nils") for i in ids(everything_system.json()))
    limited = await world.http.get("/Observation?_count=200&_total=accurate", headers=system_for_kari)
    assert limited.status_code == 200, limited.text
    found = ids(limited.json())
    assert found
    assert all(i.startswith("Observation/kari") for i in found)
    assert limited.json()["total"] == len(found)
    assert (await world.http.get("/Observation/nils-bp", headers=system_for_kari)).status_code == 403

    gp_for_kari = auth_header(
        mint(subject="gp", scopes="user/*.rs", hpr=GP_HPR, orgnr=GP_OFFICE_ORGNR, patient="kari")
    )
    patients = ids((await world.http.get("/Patient?_count=200", headers=gp_for_kari)).json())
    assert patients == {"Patient/kari"}
    assert len(ids((await world.http.get("/Patient?_count=200", headers=world.gp)).json())) > 1


async def test_only_system_clients_register_subscriptions(world: World) -> None:
    """Notifications go to an endpoint outside a person's session: only system clients register them."""
    subscription = {
        "resourceType": "Subscription",
        "id": "gp-tasks",
        "status": "requested",
        "reason": "Referral status",
        "criteria": "Task?status=requested",
        "channel": {
            "type": "rest-hook",
            "endpoint": "https://hooks.example.no/fhir",
            "payload": "application/fhir+json",
        },
    }
    for who in (world.gp, world.kari):
        response = await world.put(subscription, who)
        assert response.status_code == 403, response.text
        assert "system clients" in response.text
    assert (await world.put(subscription, world.system)).status_code == 201


async def test_tasks_are_their_patients_data_though_r4_leaves_task_out_of_the_compartment(
    world: World,
) -> None:
    """A Task for a patient (a referral Task carries the receiver's notes) follows that patient's rules."""
    for patient in ("kari", "nils"):
        task = {
            "resourceType": "Task",
            "id": f"{patient}-task",
            "status": "requested",
            "intent": "order",
            "for": {"reference": f"Patient/{patient}"},
            "note": [{"text": f"internal note about {patient}"}],
        }
        assert (await world.put(task)).status_code in (200, 201)
    assert (await world.http.get("/Task/kari-task", headers=world.kari)).status_code == 200
    assert (await world.http.get("/Task/nils-task", headers=world.kari)).status_code == 403
    found = await world.http.get("/Task", headers=world.kari)
    assert found.status_code == 200
    assert ids(found.json()) == {"Task/kari-task"}
    assert await world.audit("entity=Task/kari-task"), "the read is audited as the patient's data"


async def test_handing_a_task_on_is_allowed_though_it_ends_the_callers_care_relation(world: World) -> None:
    """The care relation that allows an update is judged on the version it replaces: forwarding or closing
    a Task the hospital owns removes the hospital's own relation, and must not undo the step."""
    task = {
        "resourceType": "Task",
        "id": "nils-task",
        "status": "in-progress",
        "intent": "order",
        "for": {"reference": "Patient/nils"},
        "owner": {"reference": "Organization/hospital"},
    }
    assert (await world.put(task)).status_code in (200, 201)
    handed_on = {**task, "owner": {"reference": "Organization/other-clinic"}}
    response = await world.put(handed_on, world.hospital)
    assert response.status_code == 200, response.text
    again = {**handed_on, "status": "completed"}
    assert (await world.put(again, world.hospital)).status_code == 403  # no longer theirs
    moved = {**task, "id": "nils-task-2", "for": {"reference": "Patient/kari"}}
    assert (await world.put(moved)).status_code in (200, 201)
    # nor may an update move a resource to a patient the caller has no relation with
    to_nils = {**moved, "for": {"reference": "Patient/nils"}, "owner": {"reference": "Organization/hospital"}}
    assert (await world.put(to_nils, world.gp)).status_code == 403


async def test_principals_searching_with_one_criteria_shape_share_its_statement_and_get_their_own_rows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search's statement is built once per shape of criteria and row filter (search_templates.py); the
    filter's values (who is asking) are bound on each use, so a statement built for one caller can never
    answer another with the first one's rows. Interleaved and repeated, so every search after the first
    of each kind of principal runs a statement another principal's search built."""
    built: list[int] = []
    template = TemplateCache.template

    def spy(cache: TemplateCache, *args: Any) -> tuple[Template, dict[str, Any]]:
        found, params = template(cache, *args)
        built.append(id(found))
        return found, params

    monkeypatch.setattr(TemplateCache, "template", spy)
    expected = {
        "kari": {"Observation/kari-bp"},  # her own
        "nils": {"Observation/nils-bp"},  # his own
        "gp": {"Observation/kari-bp"},  # Kari's GP; not Nils's
        "other": set(),  # no care relation to either
    }
    statements: dict[str, set[int]] = {"kari": set(), "nils": set(), "gp": set(), "other": set()}
    for _ in range(2):
        for who in ("kari", "nils", "gp", "other"):
            built.clear()
            found = await world.http.get("/Observation?code:text=Blodtrykk", headers=getattr(world, who))
            assert found.status_code == 200, found.text
            assert ids(found.json()) == expected[who], who
            statements[who] |= set(built)
    # Citizens share one statement, personnel another: the cache was hit across principals.
    assert statements["kari"]
    assert statements["gp"]
    assert statements["kari"] == statements["nils"]
    assert statements["gp"] == statements["other"]
