"""The discharge-ready report: pure. Notices (clock.Notice) grouped per municipality, as Parameters."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from app.adapters.plo.clock import ANSWERS, Notice, notice_of, relevant

Json = dict[str, Any]


def _notice_parts(n: Notice, as_of: date) -> list[Json]:
    parts: list[Json] = []
    if n.task_id is not None:
        parts.append({"name": "task", "valueReference": {"reference": f"Task/{n.task_id}"}})
    if n.patient is not None:
        parts.append({"name": "patient", "valueReference": n.patient})
    parts.append({"name": "noticeDate", "valueDate": n.notice.isoformat()})
    if n.estimated is not None:
        parts.append({"name": "estimated", "valueBoolean": n.estimated})
    parts.append({"name": "status", "valueCode": n.status})
    if n.answer is not None:
        parts.append({"name": "answer", "valueCoding": {"code": n.answer, "display": ANSWERS[n.answer]}})
    if n.answered is not None:
        parts.append({"name": "answered", "valueDateTime": n.answered})
    if n.can_receive_from is not None:
        parts.append({"name": "canReceiveFrom", "valueDate": n.can_receive_from.isoformat()})
    if n.ended is not None and n.end_reason is not None:
        parts.append({"name": "ended", "valueDate": n.ended.isoformat()})
        parts.append({"name": "endReason", "valueCode": n.end_reason})
    parts.append({"name": "daysWaiting", "valueInteger": n.days_waiting(as_of)})
    parts.append({"name": "payableDays", "valueInteger": n.payable_days(as_of)})
    return parts


def _key(reference: Json | None) -> str:
    if not reference:
        return "-"
    return str(reference.get("reference") or reference.get("display") or "-")


def discharge_ready_parameters(tasks: Iterable[Json], as_of: date, since: date | None) -> Json:
    """Per municipality (the Task owner): its notices with their clocks as of `as_of`, those still open
    at or after `since` (all when None), oldest notice first; totals of days waiting and payable days."""
    groups: dict[str, tuple[Json | None, list[Notice]]] = {}
    for task in tasks:
        n = notice_of(task)
        if n is None or not relevant(n, since, as_of):
            continue
        owner, notices = groups.setdefault(_key(n.municipality), (n.municipality, []))
        notices.append(n)
    parameters: list[Json] = [{"name": "today", "valueDate": as_of.isoformat()}]
    if since is not None:
        parameters.append({"name": "_since", "valueDate": since.isoformat()})
    for key in sorted(groups):
        owner, notices = groups[key]
        notices.sort(key=lambda n: (n.notice, n.task_id or ""))
        parts: list[Json] = []
        if owner is not None:
            parts.append({"name": "municipality", "valueReference": owner})
        open_now = [n for n in notices if n.ended is None and n.status not in ("cancelled", "completed")]
        parts += [
            {"name": "notices", "valueInteger": len(notices)},
            {"name": "open", "valueInteger": len(open_now)},
            {"name": "daysWaiting", "valueInteger": sum(n.days_waiting(as_of) for n in notices)},
            {"name": "payableDays", "valueInteger": sum(n.payable_days(as_of) for n in notices)},
        ]
        parts += [{"name": "notice", "part": _notice_parts(n, as_of)} for n in notices]
        parameters.append({"name": "municipality", "part": parts})
    return {"resourceType": "Parameters", "parameter": parameters}
