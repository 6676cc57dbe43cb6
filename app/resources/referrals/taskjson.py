"""Small readers and writers for FHIR R4 Task JSON, shared by the workflow, routing and patient view.

Dates of the workflow are Norwegian calendar dates: a receipt at 23:30 UTC on 3 March counts as 4 March in
Oslo, and the deadlines are counted from that date.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.resources.referrals.codes import OUTPUT_SYSTEM, REFERRAL_STATUS_SYSTEM, Output, codeable

Task = dict[str, Any]
Reference = dict[str, Any]

OSLO = ZoneInfo("Europe/Oslo")


def parse_datetime(value: Any) -> datetime | None:
    """A FHIR dateTime/instant as an aware datetime; a bare date is midnight in Oslo. None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), OSLO)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=OSLO)


def parse_date(value: Any) -> date | None:
    """The Norwegian calendar date of a FHIR date or dateTime."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    parsed = parse_datetime(value)
    return parsed.astimezone(OSLO).date() if parsed else None


def local_date(moment: datetime) -> date:
    return moment.astimezone(OSLO).date()


def instant(moment: datetime) -> str:
    return moment.isoformat()


def status(task: Task) -> str:
    value = task.get("status")
    return value if isinstance(value, str) else ""


def business_status(task: Task) -> str | None:
    """The businessStatus code of this pack's system, if any."""
    concept = task.get("businessStatus")
    for c in concept.get("coding", []) if isinstance(concept, dict) else ():
        if (
            isinstance(c, dict)
            and c.get("system") == REFERRAL_STATUS_SYSTEM
            and isinstance(c.get("code"), str)
        ):
            return str(c["code"])
    return None


def _is_output(entry: Any, kind: Output) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), dict):
        return False
    codings = entry["type"].get("coding", [])
    return any(
        isinstance(c, dict) and c.get("system") == OUTPUT_SYSTEM and c.get("code") == kind for c in codings
    )


def output(task: Task, kind: Output) -> Any:
    """The value[x] of the output entry of this type (whatever its value type), or None."""
    for entry in task.get("output", []):
        if _is_output(entry, kind):
            for key, value in entry.items():
                if key.startswith("value"):
                    return value
    return None


def set_output(task: Task, kind: Output, value_type: str, value: Any) -> None:
    """Replace (or add) the single output entry of this type; value_type is e.g. "DateTime", "Reference"."""
    entries = [e for e in task.get("output", []) if not _is_output(e, kind)]
    entries.append({"type": codeable(OUTPUT_SYSTEM, kind), f"value{value_type}": value})
    task["output"] = entries


def drop_output(task: Task, *kinds: Output) -> None:
    entries = [e for e in task.get("output", []) if not any(_is_output(e, k) for k in kinds)]
    if entries:
        task["output"] = entries
    else:
        task.pop("output", None)


def output_date(task: Task, kind: Output) -> date | None:
    return parse_date(output(task, kind))


def received_date(task: Task) -> date | None:
    """The current owner's receipt, falling back to the first receipt in specialist care."""
    return output_date(task, Output.RECEIVED) or output_date(task, Output.FIRST_RECEIVED)


def first_received_date(task: Task) -> date | None:
    """The first receipt in specialist care (ansiennitet), which the assessment deadline counts from, else
    the current owner's receipt."""
    return output_date(task, Output.FIRST_RECEIVED) or output_date(task, Output.RECEIVED)


def care_deadline(task: Task) -> date | None:
    restriction = task.get("restriction")
    period = restriction.get("period") if isinstance(restriction, dict) else None
    return parse_date(period.get("end")) if isinstance(period, dict) else None


def reference_key(ref: Any) -> str | None:
    """A comparable key of a Reference: its literal reference, else system|value of its identifier."""
    if not isinstance(ref, dict):
        return None
    if isinstance(ref.get("reference"), str):
        return str(ref["reference"])
    identifier = ref.get("identifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        return f"{identifier.get('system', '')}|{identifier['value']}"
    return None


def is_reference(ref: Any) -> bool:
    return reference_key(ref) is not None


def add_note(task: Task, text: str, moment: datetime, author: Reference | None) -> None:
    note: dict[str, Any] = {"time": instant(moment), "text": text}
    if author is not None:
        note["authorReference"] = author
    task.setdefault("note", []).append(note)
