"""audit_event(): BALP-shaped R4 AuditEvents for each kind of caller and outcome (pure, no database)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from app.resources.no_basis.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    synthetic_fnr,
)
from app.security.audit import (
    ACCESS_BASIS_SYSTEM,
    AUDIT_FLAG_SYSTEM,
    CLIENT_ID_SYSTEM,
    HP_CATEGORY_SYSTEM,
    AuditRecord,
    audit_event,
    own_part,
)
from app.security.audit_store import event_rows
from app.security.principal import Principal, ScopeSet

FNR = synthetic_fnr(13, 9, 1972, 100)
DNR = str(int(FNR[0]) + 4) + FNR[1:]  # the D-nummer shape: first digit + 4


def personnel(**extra: Any) -> Principal:
    values: dict[str, Any] = {
        "kind": "personnel",
        "subject": "sub-lege",
        "client_id": "ehr-client",
        "issuer": "https://helseid.test",
        "scopes": ScopeSet(),
        "token_id": "jti-1",
        "name": "Lege Legesen",
        "hpr": "565501872",
        "category": "LE",
        "orgnr": "974633574",
        "child_orgnr": "912345678",
        "access_basis": "care-relation",
        "source_system": "EPJ Demo 1.0",
        **extra,
    }
    return Principal(**values)


def citizen(pid: str = FNR, **extra: Any) -> Principal:
    return Principal(
        kind="citizen",
        subject="sub-citizen",
        client_id="citizen-app",
        issuer="https://idporten.test",
        scopes=ScopeSet(),
        pid=pid,
        **extra,
    )


def system() -> Principal:
    return Principal(
        kind="system",
        subject="lab-system",
        client_id="lab-client",
        issuer="https://helseid.test",
        scopes=ScopeSet(),
        orgnr="974633574",
    )


def valid(event: dict[str, Any]) -> dict[str, Any]:
    AuditEvent.model_validate(event)
    return event


def agent_by_type(event: dict[str, Any], code: str) -> dict[str, Any]:
    agents: list[dict[str, Any]] = [a for a in event["agent"] if a["type"]["coding"][0]["code"] == code]
    assert len(agents) == 1
    return agents[0]


def entities_by_role(event: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [e for e in event.get("entity", []) if e.get("role", {}).get("code") == code]


def purpose(event: dict[str, Any]) -> str:
    codes: list[str] = [c["code"] for p in event["purposeOfEvent"] for c in p["coding"]]
    assert len(codes) == 1
    return codes[0]


def test_personnel_read() -> None:
    at = datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)
    record = AuditRecord(
        "read", "0", personnel(), ("p1",), (("Observation", "o1", 2),), request_id="req-1", recorded=at
    )
    event = valid(audit_event(record))
    assert event["type"]["code"] == "rest"
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}
    ]
    assert event["action"] == "R"
    assert event["recorded"] == "2025-03-01T12:30:15.123Z"
    assert event["outcome"] == "0"
    assert purpose(event) == "TREAT"
    assert "meta" not in event

    user = agent_by_type(event, "IRCP")
    assert user["who"]["identifier"] == {"system": HPR_SYSTEM, "value": "565501872"}
    assert user["requestor"] is True
    assert user["name"] == "Lege Legesen"
    assert user["altId"] == "sub-lege"
    assert user["role"][0]["coding"][0] == {"system": HP_CATEGORY_SYSTEM, "code": "LE"}
    assert user["policy"] == ["jti-1"]
    basis = [c for c in user["purposeOfUse"][0]["coding"] if c["system"] == ACCESS_BASIS_SYSTEM]
    assert basis == [{"system": ACCESS_BASIS_SYSTEM, "code": "care-relation"}]

    app = agent_by_type(event, "110150")
    assert app["who"]["identifier"] == {"system": CLIENT_ID_SYSTEM, "value": "ehr-client"}
    assert app["name"] == "EPJ Demo 1.0"
    assert app["requestor"] is False
    orgs = [a["who"]["identifier"] for a in event["agent"] if a["type"]["coding"][0]["code"] == "PROV"]
    assert orgs == [
        {"system": ORGNR_SYSTEM, "value": "974633574"},
        {"system": ORGNR_SYSTEM, "value": "912345678"},
    ]
    assert event["source"]["observer"] == {"display": "helsebro"}
    assert event["source"]["type"][0]["code"] == "4"

    (patient,) = entities_by_role(event, "1")
    assert patient["what"] == {"reference": "Patient/p1"}
    assert patient["type"]["code"] == "1"
    (data,) = entities_by_role(event, "4")
    assert data["what"] == {"reference": "Observation/o1/_history/2"}
    assert data["type"]["code"] == "2"
    request = [e for e in event["entity"] if e["type"]["code"] == "XrequestId"]
    assert request[0]["what"]["identifier"]["value"] == "req-1"


def test_citizen_search_records_the_query_base64() -> None:
    query = "Observation?patient=Patient/p1&code=http://loinc.org|8867-4"
    record = AuditRecord("search", "0", citizen(access_basis="self"), ("p1",), query=query)
    event = valid(audit_event(record))
    assert event["subtype"][0]["code"] == "search-type"
    assert event["action"] == "E"
    assert purpose(event) == "PATRQT"
    user = agent_by_type(event, "IRCP")
    assert user["who"]["identifier"] == {"system": FNR_SYSTEM, "value": FNR}
    assert "role" not in user
    (query_entity,) = entities_by_role(event, "24")
    assert base64.b64decode(query_entity["query"]).decode() == query
    assert query_entity["type"]["code"] == "2"
    assert "what" not in query_entity
    assert [e["what"]["reference"] for e in entities_by_role(event, "1")] == ["Patient/p1"]


def test_citizen_with_d_number() -> None:
    event = valid(audit_event(AuditRecord("read", "0", citizen(DNR), ("p1",))))
    assert agent_by_type(event, "IRCP")["who"]["identifier"] == {"system": DNR_SYSTEM, "value": DNR}


def test_system_create() -> None:
    record = AuditRecord("create", "0", system(), ("p1",), (("Observation", "o9", 1),))
    event = valid(audit_event(record))
    assert event["action"] == "C"
    assert event["subtype"][0]["code"] == "create"
    assert purpose(event) == "HOPERAT"
    client = agent_by_type(event, "110150")
    assert client["requestor"] is True
    assert client["who"]["identifier"] == {"system": CLIENT_ID_SYSTEM, "value": "lab-client"}
    assert not [a for a in event["agent"] if a["type"]["coding"][0]["code"] in ("IRCP", "AUT")]
    assert [e["what"]["reference"] for e in entities_by_role(event, "4")] == ["Observation/o9/_history/1"]


def test_personnel_write_is_authored() -> None:
    event = valid(audit_event(AuditRecord("patch", "0", personnel(), ("p1",), (("Condition", "c1", 3),))))
    assert event["action"] == "U"
    assert agent_by_type(event, "AUT")["requestor"] is True


def test_denied_access() -> None:
    record = AuditRecord(
        "search", "4", personnel(), (), query="Condition?patient=p7", outcome_desc="no care relation"
    )
    event = valid(audit_event(record))
    assert event["outcome"] == "4"
    assert event["outcomeDesc"] == "no care relation"
    assert entities_by_role(event, "1") == []
    assert len(entities_by_role(event, "24")) == 1


def test_emergency_access_is_flagged_for_follow_up() -> None:
    principal = personnel(access_basis="emergency", emergency_reason="bevisstløs pasient")
    record = AuditRecord("read", "0", principal, ("p1", "p2"), emergency=True)
    event = valid(audit_event(record))
    assert event["meta"]["tag"] == [
        {
            "system": AUDIT_FLAG_SYSTEM,
            "code": "emergency-access",
            "display": "Akuttilgang – til etterkontroll",
        }
    ]
    assert purpose(event) == "ETREAT"
    patients = entities_by_role(event, "1")
    assert [p["what"]["reference"] for p in patients] == ["Patient/p1", "Patient/p2"]
    for entity in patients:
        assert entity["detail"] == [{"type": "emergency-reason", "valueString": "bevisstløs pasient"}]
    # the record's own reason wins over the one stated in the token
    event = audit_event(
        AuditRecord("read", "0", principal, ("p1",), emergency=True, emergency_reason="hjertestans")
    )
    assert entities_by_role(event, "1")[0]["detail"][0]["valueString"] == "hjertestans"


def test_anonymous_caller_and_operation() -> None:
    event = valid(audit_event(AuditRecord("$everything", "4", None, ("p1",), outcome_desc="unauthenticated")))
    assert event["subtype"][0]["code"] == "operation"
    assert event["action"] == "E"
    assert agent_by_type(event, "IRCP")["who"] == {"display": "anonymous"}
    assert "purposeOfEvent" not in event


@pytest.mark.parametrize(
    ("interaction", "action"),
    [
        ("vread", "R"),
        ("update", "U"),
        ("delete", "D"),
        ("history-instance", "R"),
        ("history-type", "E"),
        ("transaction", "E"),
    ],
)
def test_every_interaction_has_an_action(interaction: str, action: str) -> None:
    event = valid(audit_event(AuditRecord(interaction, "0", personnel(), ("p1",))))
    assert event["action"] == action
    assert event["subtype"][0]["code"] == interaction


def test_unknown_interaction_or_outcome_is_a_bug() -> None:
    with pytest.raises(ValueError, match="interaction"):
        audit_event(AuditRecord("peek", "0", None, ()))
    with pytest.raises(ValueError, match="outcome"):
        audit_event(AuditRecord("read", "2", None, ()))


def test_the_stored_row_holds_what_the_trail_is_searched_by() -> None:
    """One audit_event row (the search columns and the JSON as served) and one audit_patient row per
    patient: no FHIR index rows."""
    at = datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)
    record = AuditRecord(
        "read",
        "0",
        personnel(),
        ("p1", "p2"),
        (("Observation", "o1", 2),),
        request_id="req-9",
        emergency=True,
        emergency_reason="akutt",
        recorded=at,
    )
    row, patients = event_rows(audit_event(record), "e1")
    assert patients == [{"event_id": "e1", "patient_id": "p1"}, {"event_id": "e1", "patient_id": "p2"}]
    content = row.pop("content")
    assert row == {
        "id": "e1",
        "recorded": at,
        "action": "R",
        "subtype": "read",
        "outcome": "0",
        "flag": "emergency-access",
        "who_system": HPR_SYSTEM,
        "who_value": "565501872",
        "altid": "sub-lege",
        "client_id": "ehr-client",
        "orgnr": "974633574",
        "sub_orgnr": "912345678",
        "entity_type": "Observation",
        "entity_id": "o1",
        "request_id": "req-9",
    }
    served = valid(orjson.loads(content))
    assert served["id"] == "e1"
    assert served["meta"]["versionId"] == "1"
    assert served["meta"]["lastUpdated"] == "2025-03-01T12:30:15.123Z"
    assert served["meta"]["tag"][0]["code"] == "emergency-access"

    system_row, _ = event_rows(audit_event(AuditRecord("create", "0", system(), ("p1",))), "e2")
    assert (system_row["who_value"], system_row["client_id"], system_row["orgnr"]) == (
        None,
        "lab-client",
        "974633574",
    )


def test_own_part_removes_the_other_patients_and_the_query() -> None:
    """Hole 8: an event about several patients, as one of them sees it."""
    query = "Observation?patient=Patient/p1,Patient/p2&name=Nordmann"
    record = AuditRecord("search", "0", personnel(), ("p1", "p2"), query=query, request_id="r")
    event = audit_event(record)
    shown = valid(own_part(event, frozenset({"p1"})))
    assert [e["what"]["reference"] for e in entities_by_role(shown, "1")] == ["Patient/p1"]
    assert entities_by_role(shown, "24") == []
    assert b"p2" not in orjson.dumps(shown)
    assert b"Nordmann" not in orjson.dumps(shown)
    assert [e for e in shown["entity"] if e["type"]["code"] == "XrequestId"]
    assert shown["agent"] == event["agent"]
    read = audit_event(AuditRecord("read", "0", personnel(), ("p1", "p2"), (("Group", "g1", 1),)))
    assert [e["what"]["reference"] for e in own_part(read, frozenset({"p2"}))["entity"]] == [
        "Patient/p2",
        "Group/g1/_history/1",
    ]
