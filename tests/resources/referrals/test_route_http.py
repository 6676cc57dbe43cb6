"""`POST /Task/{id}/$route` through HTTP with the example rule set, on SQLite and PostgreSQL: the common
intake's rules pick the unit from the referral's facts, and the decision is recorded on the Task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import app.resources.referrals as referrals_pack
from app.resources.no_basis.search import MUNICIPALITY_EXTENSION
from app.resources.referrals.codes import REFERRAL_CATEGORY, Output
from app.resources.referrals.routing import RuleSetError
from app.resources.referrals.taskjson import output
from tests.conftest import app_client
from tests.databases import TestDatabase
from tests.fhir.fixtures import FHIR_JSON
from tests.resources.referrals.builders import REFERRAL_TASK_CODE

EXAMPLE = Path(referrals_pack.__file__).parent / "routing-example.json"
INTAKE = {"reference": "Organization/intake", "display": "Felles henvisningsmottak"}
ICD10 = "urn:oid:2.16.578.1.12.4.1.1.7110"


def referral(patient_birth: str, diagnosis: str, municipality: str = "4640") -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": "pat",
            "birthDate": patient_birth,
            "address": [
                {
                    "use": "home",
                    "district": "Fjordby",
                    "_district": {
                        "extension": [
                            {
                                "url": MUNICIPALITY_EXTENSION,
                                "valueCoding": {
                                    "system": "urn:oid:2.16.578.1.12.4.1.1.3402",
                                    "code": municipality,
                                },
                            }
                        ]
                    },
                }
            ],
        },
        {"resourceType": "Organization", "id": "intake", "name": "Felles henvisningsmottak"},
        # The units the example rules route to: a rule's target must exist (referential integrity).
        {"resourceType": "Organization", "id": "bup-fjordby", "name": "BUP Fjordby"},
        {"resourceType": "Organization", "id": "dps-fjordby", "name": "Fjordby DPS"},
        {
            "resourceType": "ServiceRequest",
            "id": "ref",
            "status": "active",
            "intent": "order",
            "category": [{"coding": [REFERRAL_CATEGORY]}],
            "subject": {"reference": "Patient/pat"},
            "performer": [INTAKE],
            "reasonCode": [{"coding": [{"system": ICD10, "code": diagnosis}]}],
            "authoredOn": "2026-11-02T09:00:00+01:00",
        },
        {
            "resourceType": "Task",
            "id": "task",
            "status": "requested",
            "intent": "order",
            "code": REFERRAL_TASK_CODE,
            "focus": {"reference": "ServiceRequest/ref"},
            "for": {"reference": "Patient/pat"},
            "owner": INTAKE,
            "authoredOn": "2026-11-02T09:00:00+01:00",
        },
    ]
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def seed(http: httpx.AsyncClient, bundle: dict[str, Any]) -> None:
    response = await http.post("/", content=orjson.dumps(bundle), headers=FHIR_JSON)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("birth", "diagnosis", "municipality", "target", "rule"),
    [
        ("2012-05-01", "F32.1", "4640", "Organization/bup-fjordby", "bup-fjordby"),
        ("1980-05-01", "F321", "4601", "Organization/dps-fjordby", "dps-fjordby"),
        ("1980-05-01", "M06.9", "4640", "Organization/intake", "default"),
    ],
)
async def test_route_picks_the_unit_by_the_rules_and_records_the_rule(
    session_databases: dict[str, TestDatabase],
    backend: str,
    birth: str,
    diagnosis: str,
    municipality: str,
    target: str,
    rule: str,
) -> None:
    async with app_client(session_databases[backend], referral_routing_rules=str(EXAMPLE)) as (http, _app):
        await seed(http, referral(birth, diagnosis, municipality))
        response = await http.post(
            "/Task/task/$route", json={"resourceType": "Parameters"}, headers=FHIR_JSON
        )
        assert response.status_code == 200, response.text
        task = response.json()
        assert task["owner"]["reference"] == target
        assert output(task, Output.ROUTING_RULE) == rule
        assert task["meta"]["versionId"] == "2"


async def test_route_after_receipt_forwards_and_keeps_history(
    session_databases: dict[str, TestDatabase], backend: str
) -> None:
    async with app_client(session_databases[backend], referral_routing_rules=str(EXAMPLE)) as (http, _app):
        await seed(http, referral("1980-05-01", "F41.1"))
        assert (
            await http.post("/Task/task/$receive", json={"resourceType": "Parameters"})
        ).status_code == 200
        response = await http.post("/Task/task/$route", json={"resourceType": "Parameters"})
        assert response.status_code == 200, response.text
        assert response.json()["owner"]["reference"] == "Organization/dps-fjordby"
        history = (await http.get("/Task/task/_history")).json()
        assert history["total"] == 3


async def test_route_without_rules_is_unknown(client: httpx.AsyncClient) -> None:
    await seed(client, referral("1980-05-01", "F41.1"))
    response = await client.post("/Task/task/$route", json={"resourceType": "Parameters"})
    assert response.status_code == 404
    # Without a rule set (REFERRAL_ROUTING_RULES) the server neither routes nor advertises $route.
    statement = (await client.get("/metadata")).json()
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    offered = {o["name"] for o in task["operation"]}
    assert "receive" in offered
    assert "route" not in offered


def test_a_bad_rule_file_stops_the_start(tmp_path: Path, session_databases: dict[str, TestDatabase]) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text('{"id": "x", "rules": [{"id": "r", "when": {"age": {"min": 1}, "colour": ["red"]}}]}')
    db = next(iter(session_databases.values()))
    with pytest.raises(RuleSetError):
        app_client(db, referral_routing_rules=str(bad))
