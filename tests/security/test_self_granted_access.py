"""Access nobody granted (issue 11, holes 10, 3 and 2): a personnel token's patient/ scopes without a launch
patient, a citizen granting themselves a proxy or parenthood or rewriting a Patient's identity or GP, and
personnel rewriting the identities the policy trusts. The legitimate paths stay open: launched tokens, a citizen's own fullmakt, personnel and
system writes, and an identity administrator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.resources.no_basis.identifiers import FNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM
from app.security.audit import AUDIT_FLAG_SYSTEM
from app.security.facts import PROXY
from app.security.scopes import IDENTITY_ADMIN_SCOPE
from tests.security.helpers import World, auth_header
from tests.security.scenario import (
    GP_HPR,
    GP_OFFICE_ORGNR,
    KARI_FNR,
    NILS_FNR,
    OTHER_CLINIC_ORGNR,
    OTHER_HPR,
    consent,
    ref,
)

IDENTITY_CHANGE = f"_tag={AUDIT_FLAG_SYSTEM}|identity-change"


# -- hole 10: patient/ scopes on a personnel token need a launch patient ---------------------------------
async def test_a_personnel_token_with_patient_scopes_and_no_launch_patient_is_refused(
    world: World, mint: Callable[..., str]
) -> None:
    claims: dict[str, Any] = {"hpr": GP_HPR, "orgnr": GP_OFFICE_ORGNR, "category": "LE"}
    unlaunched = auth_header(mint(subject="gp", scopes="patient/*.rs", **claims))
    response = await world.http.get("/Observation/kari-bp", headers=unlaunched)
    assert response.status_code == 401
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "launch patient" in outcome["issue"][0]["diagnostics"]
    mixed = auth_header(mint(subject="gp", scopes="user/*.rs patient/Observation.rs", **claims))
    assert (await world.http.get("/Observation/kari-bp", headers=mixed)).status_code == 401
    # Launched for Kari, the same scopes work, for Kari only.
    launched = auth_header(mint(subject="gp", scopes="patient/*.rs", patient="kari", **claims))
    assert (await world.http.get("/Observation/kari-bp", headers=launched)).status_code == 200
    assert (await world.http.get("/Observation/ola-temp", headers=launched)).status_code == 403
    # Citizens' patient/ scopes are limited by who they are: no launch patient needed.
    assert (await world.http.get("/Observation/kari-bp", headers=world.kari)).status_code == 200


# -- hole 3: citizens grant proxies over their own record only; parenthood is not theirs to declare -----
def fullmakt(res_id: str, patient: str, holder_fnr: str) -> dict[str, Any]:
    actor = {
        "role": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "POWATT"}]
        },
        "reference": {"identifier": {"system": FNR_SYSTEM, "value": holder_fnr}},
    }
    return consent(res_id, patient, PROXY, period={"start": "2020-01-01"}, actor=[actor])


def parent(res_id: str, child: str, parent_fnr: str) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "id": res_id,
        "active": True,
        "patient": ref(f"Patient/{child}"),
        "identifier": [{"system": FNR_SYSTEM, "value": parent_fnr}],
        "relationship": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH"}]}
        ],
    }


async def test_a_citizen_cannot_grant_themselves_a_proxy_over_someone_elses_record(world: World) -> None:
    # Over her young son's record (which she may see now, but not once he is 12).
    response = await world.put(fullmakt("ola-to-kari", "ola", KARI_FNR), world.kari)
    assert response.status_code == 403, response.text
    # Over a record she holds a proxy for: she may read Nils's data, not hand it on or extend her proxy.
    assert (await world.put(fullmakt("nils-to-kari", "nils", KARI_FNR), world.nils)).status_code == 201
    extended = fullmakt("nils-to-kari-forever", "nils", KARI_FNR)
    assert (await world.put(extended, world.kari)).status_code == 403
    existing = fullmakt("nils-to-kari", "nils", KARI_FNR)
    existing["provision"]["period"] = {"start": "2020-01-01", "end": "2099-12-31"}
    assert (await world.put(existing, world.kari)).status_code == 403
    assert (await world.http.delete("/Consent/nils-to-kari", headers=world.kari)).status_code == 403
    # Nils's own fullmakt stands, and the refused attempts left nothing behind.
    assert (await world.http.get("/Observation/nils-bp", headers=world.kari)).status_code == 200
    gone = await world.http.get("/Consent/nils-to-kari-forever", headers=world.system)
    assert gone.status_code == 404


async def test_a_citizen_grants_a_proxy_over_their_own_record(world: World) -> None:
    response = await world.put(fullmakt("kari-to-nils", "kari", NILS_FNR), world.kari)
    assert response.status_code == 201, response.text
    assert (await world.http.get("/Observation/kari-bp", headers=world.nils)).status_code == 200
    revoked = {**fullmakt("kari-to-nils", "kari", NILS_FNR), "status": "inactive"}
    assert (await world.put(revoked, world.kari)).status_code == 200
    assert (await world.http.get("/Observation/kari-bp", headers=world.nils)).status_code == 403


async def test_a_citizen_cannot_declare_parenthood(world: World) -> None:
    # Nils names himself father of Kari's son; and Kari of the neighbour's record.
    assert (await world.put(parent("nils-father-of-ola", "ola", NILS_FNR), world.nils)).status_code == 403
    assert (await world.put(parent("kari-mother-of-ola", "ola", KARI_FNR), world.kari)).status_code == 403
    assert (await world.http.get("/Observation/ola-temp", headers=world.nils)).status_code == 403
    # Nor can a parent take over (or end) an existing parenthood record.
    mother = (await world.http.get("/RelatedPerson/kari-parent-of-ola", headers=world.kari)).json()
    taken = {**mother, "identifier": [{"system": FNR_SYSTEM, "value": NILS_FNR}]}
    assert (await world.put(taken, world.kari)).status_code == 403
    assert (
        await world.http.delete("/RelatedPerson/kari-parent-of-ola", headers=world.kari)
    ).status_code == 403
    # Parenthood comes from a trusted source: a system, or personnel with a care relation.
    assert (await world.put(parent("nils-father-of-ola", "ola", NILS_FNR), world.gp)).status_code == 201
    assert (await world.http.get("/Observation/ola-temp", headers=world.nils)).status_code == 200


async def patient_as_stored(world: World, patient_id: str) -> dict[str, Any]:
    response = await world.http.get(f"/Patient/{patient_id}", headers=world.system)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def edited(patient: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**patient, **changes}.items() if k != "meta"}


async def test_a_citizen_cannot_make_a_record_their_own_or_choose_its_gp(world: World) -> None:
    ola = await patient_as_stored(world, "ola")
    # Kari may edit her young son's record, but not add her fødselsnummer to it (his record would then
    # be hers, past his twelfth birthday too) nor give a GP of her choosing a care relation with him.
    own_fnr = [*ola["identifier"], {"system": FNR_SYSTEM, "value": KARI_FNR}]
    assert (await world.put(edited(ola, identifier=own_fnr), world.kari)).status_code == 403
    other_gp = [ref("Organization/other-clinic")]
    assert (await world.put(edited(ola, generalPractitioner=other_gp), world.kari)).status_code == 403
    patch = [{"op": "add", "path": "/generalPractitioner/-", "value": ref("Organization/other-clinic")}]
    patched = await world.http.patch(
        "/Patient/ola", json=patch, headers={**world.kari, "Content-Type": "application/json-patch+json"}
    )
    assert patched.status_code == 403, patched.text
    assert (await world.http.delete("/Patient/ola", headers=world.kari)).status_code == 403
    # Under a fullmakt from Nils she reads his record; she does not pick his GP either, nor he his own.
    assert (await world.put(fullmakt("nils-to-kari", "nils", KARI_FNR), world.nils)).status_code == 201
    nils = await patient_as_stored(world, "nils")
    assert (await world.put(edited(nils, generalPractitioner=other_gp), world.kari)).status_code == 403
    assert (await world.put(edited(nils, generalPractitioner=other_gp), world.nils)).status_code == 403
    # The records are as they were (the other clinic got no care relation), and each refusal is audited.
    assert await patient_as_stored(world, "ola") == ola
    assert (await patient_as_stored(world, "nils"))["meta"] == nils["meta"]
    refused = await world.audit("patient=ola&outcome=4")
    assert any("identity or GP changed by a citizen" in e.get("outcomeDesc", "") for e in refused)


async def test_citizens_edit_the_rest_and_the_health_service_keeps_gp_and_identity(world: World) -> None:
    ola = await patient_as_stored(world, "ola")
    phone = [{"system": "phone", "value": "+4791234567"}]
    assert (await world.put(edited(ola, telecom=phone), world.kari)).status_code == 200
    kari = await patient_as_stored(world, "kari")
    assert (await world.put(edited(kari, telecom=phone), world.kari)).status_code == 200
    # The GP office (personnel with a care relation) records Ola's regular GP, a system Nils's.
    ola = await patient_as_stored(world, "ola")
    assert (
        await world.put(edited(ola, generalPractitioner=[ref("PractitionerRole/gp-role")]), world.gp)
    ).status_code == 200
    nils = await patient_as_stored(world, "nils")
    with_gp = edited(nils, generalPractitioner=[ref("PractitionerRole/gp-role")])
    assert (await world.put(with_gp, world.system)).status_code == 200
    assert (await world.http.get("/Observation/nils-bp", headers=world.gp)).status_code == 200


# -- hole 2: identities the policy trusts change only through the identity administration scope ---------
def identity_admin(mint: Callable[..., str], scopes: str = "system/*.cruds") -> dict[str, str]:
    return auth_header(
        mint(subject="register", scopes=f"{scopes} {IDENTITY_ADMIN_SCOPE}", client_id="org-register")
    )


async def current(world: World, path: str) -> dict[str, Any]:
    response = await world.http.get(path, headers=world.system)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_personnel_cannot_add_their_orgnr_or_hpr_to_anothers_identity(
    world: World, secure_app: FastAPI
) -> None:
    gp_office = await current(world, "/Organization/gp-office")
    hijacked = {**gp_office}
    hijacked["identifier"] = [*gp_office["identifier"], {"system": ORGNR_SYSTEM, "value": OTHER_CLINIC_ORGNR}]
    gp = await current(world, "/Practitioner/gp")
    posing = {**gp, "identifier": [*gp["identifier"], {"system": HPR_SYSTEM, "value": OTHER_HPR}]}
    role = await current(world, "/PractitionerRole/gp-role")
    moved = {**role, "organization": ref("Organization/other-clinic")}
    for attempt in (hijacked, posing, moved):
        for who in (world.other, world.system):  # a write scope is not enough, not even a system's
            response = await world.put(attempt, who)
            assert response.status_code == 403, response.text
            assert IDENTITY_ADMIN_SCOPE in response.text
    for path in ("/Organization/gp-office", "/Practitioner/gp", "/PractitionerRole/gp-role"):
        assert (await world.http.delete(path, headers=world.other)).status_code == 403
    # A role at a chosen id that Kari's record already names (a dangling reference) is a takeover too.
    # Referential integrity refuses the dangling reference; a bulk load runs without it.
    kari = await current(world, "/Patient/kari")
    kari["generalPractitioner"].append(ref("PractitionerRole/locum"))
    assert (await world.put(kari, world.gp)).status_code == 422
    secure_app.state.fhir.referential_integrity = False
    try:
        assert (await world.put(kari, world.gp)).status_code == 200
    finally:
        secure_app.state.fhir.referential_integrity = True
    locum = {
        "resourceType": "PractitionerRole",
        "id": "locum",
        "practitioner": ref("Practitioner/other-doctor"),
        "organization": ref("Organization/other-clinic"),
    }
    assert (await world.put(locum, world.other)).status_code == 403
    assert (await world.http.get("/Observation/kari-bp", headers=world.other)).status_code == 403


async def test_identity_changes_outside_the_trusted_parts_need_only_the_write_scope(world: World) -> None:
    gp_office = await current(world, "/Organization/gp-office")
    with_phone = {**gp_office, "telecom": [{"system": "phone", "value": "+47 55 00 00 00"}]}
    assert (await world.put(with_phone, world.gp)).status_code == 200
    # A new organisation under a new id takes over nobody's patients.
    new = {
        "resourceType": "Organization",
        "identifier": [{"system": ORGNR_SYSTEM, "value": OTHER_CLINIC_ORGNR}],
        "name": "Naboklinikken avd. 2",
    }
    created = await world.http.post("/Organization", json=new, headers=world.other)
    assert created.status_code == 201
    # Audited with what it says, but not flagged for follow-up: message intake creates many of these.
    entity = f"entity=Organization/{created.json()['id']}"
    (event,) = await world.audit(f"{entity}&action=C")
    details = {d["type"]: d["valueString"] for ent in event["entity"] for d in ent.get("detail", [])}
    assert OTHER_CLINIC_ORGNR in details["identity-after"]
    assert await world.audit(f"{IDENTITY_CHANGE}&{entity}") == []


async def test_the_identity_administrator_changes_identities_and_every_change_is_flagged(
    world: World, mint: Callable[..., str]
) -> None:
    admin = identity_admin(mint)
    role = await current(world, "/PractitionerRole/gp-role")
    moved = {**role, "organization": ref("Organization/other-clinic")}
    response = await world.put(moved, admin)
    assert response.status_code == 200, response.text
    # The change counts at once: Kari's regular GP role is now at the other clinic.
    assert (await world.http.get("/Observation/kari-bp", headers=world.other)).status_code == 200
    # The seeding's create is audited but not flagged (a new identity); this is the update.
    (event,) = await world.audit(f"{IDENTITY_CHANGE}&entity=PractitionerRole/gp-role&action=U")
    assert event["outcome"] == "0"
    details = {d["type"]: d["valueString"] for ent in event["entity"] for d in ent.get("detail", [])}
    assert "Organization/gp-office" in details["identity-before"]
    assert "Organization/other-clinic" in details["identity-after"]
    # Deleting a trusted identity is a change as well.
    assert (await world.http.delete("/PractitionerRole/gp-role", headers=admin)).status_code == 200
    assert len(await world.audit(f"{IDENTITY_CHANGE}&entity=PractitionerRole/gp-role&action=D")) == 1
    # A write scope is still needed besides the administration scope.
    read_only_admin = identity_admin(mint, scopes="system/*.rs")
    org = await current(world, "/Organization/other-clinic")
    assert (await world.put({**org, "active": False}, read_only_admin)).status_code == 403


async def test_a_citizen_token_never_administers_identities(world: World, mint: Callable[..., str]) -> None:
    kari_admin = auth_header(
        mint(subject="kari", scopes=f"patient/*.cruds {IDENTITY_ADMIN_SCOPE}", pid=KARI_FNR)
    )
    gp = await current(world, "/Practitioner/gp")
    posing = {**gp, "identifier": [{"system": HPR_SYSTEM, "value": "9999999"}]}
    assert (await world.put(posing, kari_admin)).status_code == 403
