"""The medication list's resources as pure functions: the one List, and what each applied change writes
(the MedicationStatement's new content, its Provenance). No database, no HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.resources.medication_list.codes import (
    DATA_OPERATION_SYSTEM,
    FREE_TEXT_EXTENSION,
    LIST_CODE,
    LIST_CODE_SYSTEM,
    LIST_IDENTIFIER_SYSTEM,
)
from app.resources.medication_list.diff import medicine

Resource = dict[str, Any]
# What a reconciliation takes from the incoming statement; the rest (id, subject, history) stays ours.
CLINICAL_ELEMENTS = (
    "medicationCodeableConcept",
    "dosage",
    "basedOn",
    "derivedFrom",
    "category",
    "reasonCode",
    "note",
    "effectivePeriod",
    "effectiveDateTime",
    "informationSource",
)
OWN_EXTENSIONS = (FREE_TEXT_EXTENSION,)


def instant(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def list_criteria(patient_id: str) -> str:
    """The search (and conditional create) that finds the patient's one List."""
    return f"{LIST_IDENTIFIER_SYSTEM}|{patient_id}"


def empty_list(patient_id: str) -> Resource:
    return {
        "resourceType": "List",
        "identifier": [{"system": LIST_IDENTIFIER_SYSTEM, "value": patient_id}],
        "status": "current",
        "mode": "working",
        "title": "Pasientens legemiddelliste",
        "code": {"coding": [{"system": LIST_CODE_SYSTEM, "code": LIST_CODE, "display": "Legemiddelliste"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def entry_ids(medication_list: Resource | None) -> list[str]:
    """The MedicationStatement ids of the List's entries, in order."""
    ids: list[str] = []
    for entry in (medication_list or {}).get("entry") or []:
        reference = (entry.get("item") or {}).get("reference") if isinstance(entry, dict) else None
        if isinstance(reference, str) and reference.startswith("MedicationStatement/"):
            ids.append(reference.split("/")[1])
    return ids


def with_entries(medication_list: Resource, references: list[str], at: datetime) -> Resource:
    updated = {k: v for k, v in medication_list.items() if k not in ("entry", "meta", "text")}
    updated["date"] = instant(at)
    if references:
        updated["entry"] = [{"date": instant(at), "item": {"reference": r}} for r in references]
    return updated


def _marked(statement: Resource) -> Resource:
    """The free-text marker set exactly when the medicine has neither FEST nor ATC coding."""
    others = [e for e in statement.get("extension") or [] if e.get("url") not in OWN_EXTENSIONS]
    if medicine(statement).free_text:
        others.append({"url": FREE_TEXT_EXTENSION, "valueBoolean": True})
    result = {k: v for k, v in statement.items() if k != "extension"}
    if others:
        result["extension"] = others
    return result


def new_statement(incoming: Resource, patient_id: str, at: datetime) -> Resource:
    statement: Resource = {"resourceType": "MedicationStatement", "status": "active"}
    statement |= {k: incoming[k] for k in CLINICAL_ELEMENTS if k in incoming}
    if "extension" in incoming:
        statement["extension"] = incoming["extension"]
    statement["subject"] = {"reference": f"Patient/{patient_id}"}
    statement["dateAsserted"] = instant(at)
    return _marked(statement)


def changed_statement(shared: Resource, incoming: Resource, at: datetime) -> Resource:
    statement = {k: v for k, v in shared.items() if k not in ("meta", "text", "dosage", "extension")}
    statement |= {k: incoming[k] for k in CLINICAL_ELEMENTS if k in incoming}
    if "extension" in incoming:
        statement["extension"] = incoming["extension"]
    statement["status"] = "active"
    statement["dateAsserted"] = instant(at)
    return _marked(statement)


def stopped_statement(shared: Resource, reason: str, at: datetime) -> Resource:
    """Stopped (seponert): kept, with its reason and the end of use."""
    statement = {k: v for k, v in shared.items() if k not in ("meta", "text", "effectiveDateTime")}
    period = dict(statement.get("effectivePeriod") or {})
    period["end"] = instant(at)
    statement |= {
        "status": "stopped",
        "statusReason": [{"text": reason}],
        "effectivePeriod": period,
        "dateAsserted": instant(at),
    }
    return statement


def provenance(
    target: str, patient_id: str, activity: str, reason: str, agent: Resource, at: datetime
) -> Resource:
    """Who changed the list, when and why: one per applied change."""
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}, {"reference": f"Patient/{patient_id}"}],
        "recorded": instant(at),
        "activity": {"coding": [{"system": DATA_OPERATION_SYSTEM, "code": activity}]},
        "reason": [{"text": reason}],
        "agent": [agent],
    }
