"""Multidose ownership as pure functions: who the responsible doctor (multidoseansvarlig lege) is, which
changes touch the multidose part of the list, and the Task that proposes such a change to the doctor
when someone from another organisation makes it (README.md, "Multidose")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.resources.medication_list.codes import (
    MULTIDOSE_EXTENSION,
    MULTIDOSE_PROPOSAL,
    MULTIDOSE_RESPONSIBLE_EXTENSION,
    TASK_CODE_SYSTEM,
)
from app.resources.medication_list.diff import Change
from app.resources.medication_list.model import instant
from app.resources.no_basis.identifiers import ORGNR_SYSTEM

Resource = dict[str, Any]


@dataclass(frozen=True)
class Responsible:
    practitioner: Resource | None  # Reference (by HPR identifier)
    organization: Resource  # Reference (by organisation number)

    @property
    def orgnr(self) -> str | None:
        identifier = self.organization.get("identifier") or {}
        return identifier.get("value") if identifier.get("system") == ORGNR_SYSTEM else None


def _extensions(resource: Resource | None, url: str) -> list[Resource]:
    return [e for e in (resource or {}).get("extension") or [] if isinstance(e, dict) and e.get("url") == url]


def responsible(medication_list: Resource | None) -> Responsible | None:
    """The multidose-responsible doctor recorded on the List; None when the patient has no multidose."""
    for extension in _extensions(medication_list, MULTIDOSE_RESPONSIBLE_EXTENSION):
        parts = {p.get("url"): p.get("valueReference") for p in extension.get("extension") or []}
        if isinstance(parts.get("organization"), dict):
            return Responsible(parts.get("practitioner"), parts["organization"])
    return None


def is_multidose(statement: Resource | None) -> bool:
    return any(e.get("valueBoolean") is True for e in _extensions(statement, MULTIDOSE_EXTENSION))


def touches_multidose(change: Change) -> bool:
    return is_multidose(change.shared) or is_multidose(change.incoming)


def may_change(owner: Responsible | None, caller_orgnrs: Iterable[str | None]) -> bool:
    """Without multidose anyone with access may; with it, only the responsible doctor's organisation."""
    return owner is None or (owner.orgnr is not None and owner.orgnr in set(caller_orgnrs))


def split(
    changes: list[Change], owner: Responsible | None, caller_orgnrs: Iterable[str | None]
) -> tuple[list[Change], list[Change]]:
    """(changes the caller may apply, changes to propose to the responsible doctor instead)."""
    if may_change(owner, caller_orgnrs):
        return changes, []
    own = [c for c in changes if not touches_multidose(c)]
    return own, [c for c in changes if touches_multidose(c)]


def proposal_task(
    change: Change,
    patient_id: str,
    list_id: str,
    owner: Responsible,
    requester: Resource,
    reason: str,
    at: datetime,
) -> Resource:
    """A Task to the responsible doctor proposing one change to the multidose part (intent proposal):
    the proposed statement contained, the current one referenced."""
    task: Resource = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "proposal",
        "code": {
            "coding": [{"system": TASK_CODE_SYSTEM, "code": MULTIDOSE_PROPOSAL}],
            "text": "Endringsforslag multidose",
        },
        "focus": {"reference": f"List/{list_id}"},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": instant(at),
        "requester": requester,
        "owner": owner.practitioner or owner.organization,
        "reasonCode": {"text": reason},
        "input": [
            {"type": {"text": "kind"}, "valueCode": change.kind.value},
            {"type": {"text": "key"}, "valueString": change.key},
            *({"type": {"text": "aspect"}, "valueCode": a.value} for a in change.aspects),
        ],
    }
    if change.shared is not None:
        reference = {"reference": f"MedicationStatement/{change.shared['id']}"}
        task["input"].append({"type": {"text": "shared"}, "valueReference": reference})
    if change.incoming is not None:
        proposed = {k: v for k, v in change.incoming.items() if k not in ("id", "meta", "contained")}
        task["contained"] = [{**proposed, "id": "proposed"}]
        task["input"].append({"type": {"text": "proposed"}, "valueReference": {"reference": "#proposed"}})
    return task
