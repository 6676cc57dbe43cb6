"""The discharge-ready clock (utskrivningsklar pasient): pure.

A hospital's notice that a patient is discharge-ready (Pasientlogistikk `MeldingUtskrivningsklarPasient`)
is kept as a `Task` (code `plo-task|discharge-ready`, owner = the municipality) whose inputs and outputs
hold the clock; `notice_of(task)` reads it back and `days_waiting` / `payable_days` count as of a day:

- `noticeDate` (input): the day the patient is discharge-ready (Hendelsekode 3).
- the municipality's answer: `businessStatus` `can-receive` / `cannot-receive`, output `answered`
  (dateTime) and `canReceiveFrom` (date); written by the municipality on FHIR (or, PLO 2.0, by its
  `TilbakemeldingUtskrivningsklarPasient`).
- the end: output `withdrawn` (avmelding, Hendelsekode 4), `discharged` (2) or `died` (13), a date.

Days waiting: calendar days from the notice to the end (or to `as_of` while still open).
Payable days: the municipality pays from the day after the notice for each day the patient is in
hospital while discharge-ready; the day of discharge (or withdrawal, or death) is not one, today is,
and from the day the municipality said it can receive the patient none is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.adapters.plo._common import CS

Json = dict[str, Any]
TASK_SYSTEM = f"{CS}/plo-task"
CLOCK_SYSTEM = f"{CS}/plo-discharge-ready"
DISCHARGE_READY = "discharge-ready"
TASK_CODE = {"system": TASK_SYSTEM, "code": DISCHARGE_READY, "display": "Utskrivningsklar pasient"}
TASK_TOKEN = f"{TASK_SYSTEM}|{DISCHARGE_READY}"
ANSWERS = {"can-receive": "Kommunen kan ta imot pasienten", "cannot-receive": "Kommunen kan ikke ta imot"}
END_PARTS = ("withdrawn", "discharged", "died")


def part_type(code: str) -> Json:
    return {"coding": [{"system": CLOCK_SYSTEM, "code": code}]}


def part_code(part: Json) -> str | None:
    codings = (part.get("type") or {}).get("coding") or []
    return next((c.get("code") for c in codings if c.get("system") == CLOCK_SYSTEM), None)


def parts(task: Json, kind: str) -> dict[str, Any]:
    """The `input` or `output` values of the clock, by code (the first `value[x]` of each)."""
    found: dict[str, Any] = {}
    for part in task.get(kind) or []:
        code = part_code(part)
        value = next((v for k, v in part.items() if k.startswith("value")), None)
        if code is not None and code not in found:
            found[code] = value
    return found


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class Notice:
    task_id: str | None
    status: str
    patient: Json | None
    municipality: Json | None
    notice: date
    estimated: bool | None = None
    answer: str | None = None
    answered: str | None = None
    can_receive_from: date | None = None
    ended: date | None = None
    end_reason: str | None = None

    def days_waiting(self, as_of: date) -> int:
        end = as_of if self.ended is None else min(self.ended, as_of)
        return max(0, (end - self.notice).days)

    def payable_days(self, as_of: date) -> int:
        stop = as_of + timedelta(days=1) if self.ended is None else min(self.ended, as_of + timedelta(days=1))
        if self.can_receive_from is not None:
            stop = min(stop, self.can_receive_from)
        return max(0, (stop - self.notice).days - 1)


def answer_code(task: Json) -> str | None:
    """The municipality's answer on a notice (`businessStatus`): can-receive / cannot-receive, or None."""
    return next(
        (
            c.get("code")
            for c in ((task.get("businessStatus") or {}).get("coding") or [])
            if c.get("system") == CLOCK_SYSTEM and c.get("code") in ANSWERS
        ),
        None,
    )


def notice_of(task: Json) -> Notice | None:
    """The clock of a discharge-ready Task; None for another Task, or one without a notice date."""
    codings = (task.get("code") or {}).get("coding") or []
    if not any(c.get("system") == TASK_SYSTEM and c.get("code") == DISCHARGE_READY for c in codings):
        return None
    inputs, outputs = parts(task, "input"), parts(task, "output")
    notice = _date(inputs.get("noticeDate"))
    if notice is None:
        return None
    answer = answer_code(task)
    ended, reason = None, None
    for code in END_PARTS:
        if (when := _date(outputs.get(code))) is not None and (ended is None or when < ended):
            ended, reason = when, code
    estimated = inputs.get("estimated")
    answered = outputs.get("answered")
    return Notice(
        task_id=task.get("id"),
        status=str(task.get("status")),
        patient=task.get("for"),
        municipality=task.get("owner"),
        notice=notice,
        estimated=estimated if isinstance(estimated, bool) else None,
        answer=answer,
        answered=answered if isinstance(answered, str) else None,
        can_receive_from=_date(outputs.get("canReceiveFrom")),
        ended=ended,
        end_reason=reason,
    )


def relevant(notice: Notice, since: date | None, as_of: date) -> bool:
    """Counted in a report: not cancelled as sent in error, given by `as_of`, and open at or after `since`."""
    if notice.status == "entered-in-error" or notice.notice > as_of:
        return False
    return since is None or notice.ended is None or notice.ended >= since or notice.notice >= since


def iso(moment: date | datetime) -> str:
    return moment.isoformat()
