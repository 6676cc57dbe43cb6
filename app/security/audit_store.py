"""The audit trail's storage: each AuditEvent as one append-only row plus one row per patient it is about.

An AuditEvent is written on every audited read. Stored as a versioned FHIR resource it cost a resource
row, a version row (the JSON twice) and 17 search index rows computed through FHIRPath; here a batch of
events is two INSERT statements: the events (canonical JSON as served, and the few columns the trail is
searched by) and their patients. Nothing ever updates or deletes these rows.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.service import canonical_bytes
from app.security.audit import AUDIT_FLAG_SYSTEM, CLIENT_ID_SYSTEM
from app.security.tables import audit_event, audit_patient

_INSERT_EVENT = insert(audit_event)
_INSERT_PATIENT = insert(audit_patient)
_USER_TYPES = frozenset({"IRCP", "AUT"})  # v3-ParticipationType of the requesting user (audit.py)


def _reference(entity: dict[str, Any]) -> tuple[str, str] | None:
    reference = (entity.get("what") or {}).get("reference")
    parts = reference.split("/") if isinstance(reference, str) else []
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def _agent_columns(agents: list[dict[str, Any]], row: dict[str, Any]) -> None:
    for agent in agents:
        codings = (agent.get("type") or {}).get("coding") or [{}]
        code = codings[0].get("code")
        identifier = (agent.get("who") or {}).get("identifier") or {}
        if code in _USER_TYPES:
            row["who_system"] = identifier.get("system")
            row["who_value"] = identifier.get("value")
            row["altid"] = agent.get("altId")
        elif code == "110150" and identifier.get("system") == CLIENT_ID_SYSTEM:
            row["client_id"] = identifier.get("value")
        elif code == "PROV":
            level = ((agent.get("role") or [{}])[0]).get("text")
            row["sub_orgnr" if level == "sub-unit" else "orgnr"] = identifier.get("value")


def event_rows(event: dict[str, Any], event_id: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The audit_event row and the audit_patient rows of an AuditEvent built by audit.audit_event().

    meta.lastUpdated is the recorded instant: an audit event has one version, made when it was recorded.
    """
    recorded = datetime.fromisoformat(event["recorded"])
    row: dict[str, Any] = {
        "id": event_id,
        "recorded": recorded,
        "action": event["action"],
        "subtype": event["subtype"][0]["code"],
        "outcome": event["outcome"],
        "flag": None,
        "who_system": None,
        "who_value": None,
        "altid": None,
        "client_id": None,
        "orgnr": None,
        "sub_orgnr": None,
        "entity_type": None,
        "entity_id": None,
        "request_id": None,
        "content": canonical_bytes(event, event_id, 1, recorded),
    }
    for tag in (event.get("meta") or {}).get("tag") or []:
        if tag.get("system") == AUDIT_FLAG_SYSTEM:
            row["flag"] = tag.get("code")
            break
    _agent_columns(event.get("agent") or [], row)
    patients: dict[str, None] = {}
    for entity in event.get("entity") or []:
        role = (entity.get("role") or {}).get("code")
        if role == "1":
            target = _reference(entity)
            if target is not None and target[0] == "Patient":
                patients[target[1]] = None
        elif role == "4" and row["entity_type"] is None:  # the server records one resource per access
            target = _reference(entity)
            if target is not None:
                row["entity_type"], row["entity_id"] = target
        elif (entity.get("type") or {}).get("code") == "XrequestId":
            row["request_id"] = ((entity.get("what") or {}).get("identifier") or {}).get("value", "")[:64]
    return row, [{"event_id": event_id, "patient_id": p} for p in patients]


def time_ordered_id() -> str:
    """A UUID version 7 (RFC 9562): milliseconds since the epoch, then 74 random bits. New rows land at the
    right edge of every index that leads with the id, instead of at a random page as with version 4.
    The bits need to be unique, not secret (the id is shown only to those who may read the event): the
    module's generator (seeded from the OS, and again in a forked child) instead of a getrandom system
    call per event."""
    value = (time.time_ns() // 1_000_000) << 80 | random.getrandbits(80)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def audit_rows(events: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The audit_event rows and the audit_patient rows of AuditEvents built by audit.audit_event(), each
    event with a new id."""
    rows: list[dict[str, Any]] = []
    patients: list[dict[str, str]] = []
    for event in events:
        row, about = event_rows(event, time_ordered_id())
        rows.append(row)
        patients += about
    return rows, patients


async def insert_audit_events(conn: AsyncConnection, events: Sequence[dict[str, Any]]) -> list[str]:
    """Insert AuditEvents (built by the server, so neither validated nor passed through write hooks) in the
    caller's transaction; returns their ids."""
    if not events:
        return []
    rows, patients = audit_rows(events)
    await conn.execute(_INSERT_EVENT, rows)
    if patients:
        await conn.execute(_INSERT_PATIENT, patients)
    return [row["id"] for row in rows]
