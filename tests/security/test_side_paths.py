"""Side paths to data (issue 11, holes 1, 4 and 6): conditional matches, `_has` and chains must tell a
caller nothing about resources it may not read, with the same rules on REST and in bundles; the GP, the
patient and system clients still get their data through the same paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from app.resources.no_basis.identifiers import FNR_SYSTEM
from tests.security.helpers import World, auth_header, ids
from tests.security.scenario import KARI_FNR, NILS_FNR, OTHER_HPR

KARI_BY_FNR = f"identifier={quote(FNR_SYSTEM)}|{KARI_FNR}"


def patient_body(fnr: str = KARI_FNR) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": FNR_SYSTEM, "value": fnr}],
        "name": [{"family": "Ukjent"}],
    }


async def denied_audit_by(world: World, patient: str, who: str) -> list[dict[str, Any]]:
    events = await world.audit(f"patient=Patient/{patient}&outcome=4")
    return [
        e
        for e in events
        if any(a.get("who", {}).get("identifier", {}).get("value") == who for a in e["agent"])
    ]


# -- hole 1: conditional create ----------------------------------------------------------------------------
async def test_conditional_create_never_returns_a_patient_the_caller_may_not_read(world: World) -> None:
    headers = {**world.other, "If-None-Exist": KARI_BY_FNR}
    response = await world.http.post("/Patient", json=patient_body(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Kari" not in response.text
    assert KARI_FNR not in response.text
    # Where the match is, so that care can start (an Encounter naming it); nothing else.
    assert response.headers["Location"].endswith("/Patient/kari")
    assert "ETag" not in response.headers
    assert await denied_audit_by(world, "kari", OTHER_HPR)
    # Nothing new was created under her identity.
    count = await world.http.get(f"/Patient?{KARI_BY_FNR}&_summary=count", headers=world.system)
    assert count.json()["total"] == 1


async def test_conditional_create_returns_the_match_to_those_who_may_read_it(world: World) -> None:
    for who in (world.gp, world.kari, world.system):
        headers = {**who, "If-None-Exist": KARI_BY_FNR, "Prefer": "return=representation"}
        response = await world.http.post("/Patient", json=patient_body(), headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == "kari"


async def test_a_citizen_without_create_scope_gets_no_conditional_match(
    world: World, mint: Callable[..., str]
) -> None:
    nils_reader = auth_header(mint(subject="nils", scopes="patient/*.rs", pid=NILS_FNR))
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    headers = {**nils_reader, "If-None-Exist": "_id=kari-bp"}
    response = await world.http.post("/Observation", json=body, headers=headers)
    assert response.status_code == 403
    assert "Blodtrykk" not in response.text


async def test_a_citizen_gets_no_content_of_another_patients_data(world: World) -> None:
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    headers = {**world.nils, "If-None-Exist": "_id=kari-bp", "Prefer": "return=representation"}
    response = await world.http.post("/Observation", json=body, headers=headers)
    assert response.status_code == 200
    assert "Blodtrykk" not in response.text
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_conditional_create_in_bundles_hides_the_match_too(world: World) -> None:
    for bundle_type in ("batch", "transaction"):
        bundle = {
            "resourceType": "Bundle",
            "type": bundle_type,
            "entry": [
                {
                    "resource": patient_body(),
                    "request": {"method": "POST", "url": "Patient", "ifNoneExist": KARI_BY_FNR},
                }
            ],
        }
        headers = {**world.other, "Prefer": "return=representation"}
        response = await world.http.post("/", json=bundle, headers=headers)
        assert response.status_code == 200, response.text
        (entry,) = response.json()["entry"]
        assert "resource" not in entry
        assert entry["response"]["status"].startswith("200")
        assert entry["response"]["location"].startswith("Patient/kari")
        assert "Kari" not in response.text


async def test_conditional_create_past_a_block_hides_the_blocked_resource(world: World) -> None:
    attachment = {"attachment": {"contentType": "text/plain"}}
    body = {"resourceType": "DocumentReference", "status": "current", "content": [attachment]}
    headers = {**world.hospital, "If-None-Exist": "_id=kari-psych-note", "Prefer": "return=representation"}
    response = await world.http.post("/DocumentReference", json=body, headers=headers)
    assert response.status_code == 200
    assert "Samtalenotat" not in response.text


# -- hole 4: _has and chains ---------------------------------------------------------------------------
async def count(world: World, query: str, who: dict[str, str]) -> int:
    response = await world.http.get(f"{query}&_summary=count", headers=who)
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def test_has_does_not_answer_about_patients_the_caller_may_not_see(world: World) -> None:
    gp_of_kari = f"/PractitionerRole?_has:Patient:general-practitioner:{KARI_BY_FNR}"
    assert await count(world, gp_of_kari, world.other) == 0
    assert await count(world, gp_of_kari, world.gp) == 1  # her own GP sees the relation
    assert await count(world, gp_of_kari, world.system) == 1
    kari_hospital = f"/Organization?_has:Encounter:service-provider:patient.{KARI_BY_FNR}"
    assert await count(world, kari_hospital, world.other) == 0
    assert await count(world, kari_hospital, world.hospital) == 1


async def test_has_does_not_look_past_a_block(world: World) -> None:
    query = "/Patient?_has:DocumentReference:subject:_id=kari-psych-note"
    assert await count(world, query, world.hospital) == 0
    assert await count(world, query, world.gp) == 1  # not blocked for the GP


async def test_has_on_the_audit_trail_answers_nothing_to_personnel(world: World) -> None:
    await world.http.get("/Observation/kari-bp", headers=world.other)  # a denied, audited attempt
    assert await count(world, "/Patient?_has:AuditEvent:patient:outcome=4", world.gp) == 0


async def test_chains_do_not_look_past_a_block(world: World) -> None:
    query = "/Observation?derived-from:DocumentReference.status=current"
    assert await count(world, query, world.hospital) == 0
    assert await count(world, query, world.gp) == 1


async def test_includes_do_not_return_blocked_resources(world: World) -> None:
    response = await world.http.get(
        "/Observation?_id=kari-bp&_include=Observation:derived-from", headers=world.hospital
    )
    assert response.status_code == 200
    assert ids(response.json(), "include") == set()


# -- hole 6: conditional update and delete ---------------------------------------------------------------
async def test_conditional_update_and_delete_do_not_name_what_the_caller_may_not_read(world: World) -> None:
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    update = await world.http.put("/Observation?_id=kari-bp", json=body, headers=world.other)
    delete = await world.http.delete("/Observation?_id=kari-bp", headers=world.other)
    for response in (update, delete):
        assert response.status_code == 403, response.text
        assert "kari" not in response.text
    still = await world.http.get("/Observation/kari-bp", headers=world.system)
    assert still.json()["code"]["text"] == "Blodtrykk"
    assert len(await denied_audit_by(world, "kari", OTHER_HPR)) >= 2


async def test_a_blocked_resource_is_not_known_on_write_as_on_read(world: World) -> None:
    doc = await world.http.get("/DocumentReference/kari-psych-note", headers=world.system)
    body = doc.json()
    read = await world.http.get("/DocumentReference/kari-psych-note", headers=world.hospital)
    put = await world.http.put("/DocumentReference/kari-psych-note", json=body, headers=world.hospital)
    delete = await world.http.delete("/DocumentReference/kari-psych-note", headers=world.hospital)
    assert read.status_code == put.status_code == delete.status_code == 404
    conditional = await world.http.delete("/DocumentReference?_id=kari-psych-note", headers=world.hospital)
    assert conditional.status_code == 403
    assert "kari-psych-note" not in conditional.text


async def test_conditional_update_works_for_the_gp(world: World) -> None:
    current = (await world.http.get("/Observation/kari-bp", headers=world.gp)).json()
    changed = {**current, "status": "amended"}
    response = await world.http.put("/Observation?_id=kari-bp", json=changed, headers=world.gp)
    assert response.status_code == 200, response.text


async def test_conditional_reference_to_a_patient_gives_its_id_only(world: World) -> None:
    """Care starts with an Encounter naming the patient by fødselsnummer: the reference resolves; the
    response holds the Encounter, nothing of the patient."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Encounter",
                    "status": "in-progress",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": f"Patient?{KARI_BY_FNR}"},
                    "serviceProvider": {"reference": "Organization/other-clinic"},
                },
                "request": {"method": "POST", "url": "Encounter"},
            }
        ],
    }
    response = await world.http.post("/", json=bundle, headers=world.other)
    assert response.status_code == 200, response.text
    assert "Kari" not in response.text


async def test_everything_tells_a_stranger_nothing_about_whether_a_patient_exists(world: World) -> None:
    """$everything checked the patient's existence before the access check: 404 for an unknown id, 403
    for a known one. Now both are 403 to a stranger, and only a caller let through learns of a 404."""
    known = await world.http.get("/Patient/kari/$everything", headers=world.other)
    unknown = await world.http.get("/Patient/no-such-patient/$everything", headers=world.other)
    assert (known.status_code, unknown.status_code) == (403, 403)
    # Another citizen likewise: Nils learns nothing about Kari's record or an id nobody has.
    as_nils = [
        await world.http.get(f"/Patient/{p}/$everything", headers=world.nils) for p in ("kari", "nobody")
    ]
    assert [r.status_code for r in as_nils] == [403, 403]
    assert (await world.http.get("/Patient/kari/$everything", headers=world.gp)).status_code == 200
    assert (
        await world.http.get("/Patient/no-such-patient/$everything", headers=world.system)
    ).status_code == 404
