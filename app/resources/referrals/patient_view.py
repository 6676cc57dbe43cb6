"""The status of a referral as a citizen portal shows it, from (ServiceRequest, Task, Appointment).

Built only from coded and dated elements (status, businessStatus, outputs, restriction, owner display,
the coded rejection reason); free text (Task.note, statusReason.text, descriptions) is never read, so the
workers' internal notes cannot reach the patient. An assessment that has not yet become a decision the
patient is told about (not entitled before the formal rejection) shows as received.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from app.resources.referrals.codes import REJECTION_REASON_SYSTEM, BusinessStatus, Output, TaskStatus, concept
from app.resources.referrals.taskjson import (
    OSLO,
    business_status,
    care_deadline,
    output_date,
    parse_date,
    parse_datetime,
    received_date,
    status,
)

BOOKED = frozenset({"booked", "arrived", "checked-in", "fulfilled"})  # Appointment.status with a real time


class PatientState(StrEnum):
    SENT = "sent"
    RECEIVED = "received"
    ASSESSED = "assessed"
    APPOINTMENT = "appointment"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FORWARDED = "forwarded"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PatientStatus:
    state: PatientState
    text_nb: str
    text_en: str
    organisation: str | None  # display name of the organisation that has the referral now
    sent: date | None = None
    received: date | None = None
    assessed: date | None = None
    deadline: date | None = None  # frist for start helsehjelp
    appointment: datetime | None = None
    reason_nb: str | None = None  # coded rejection reason only
    reason_en: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, absent values left out."""
        result: dict[str, Any] = {"state": str(self.state), "text": {"nb": self.text_nb, "en": self.text_en}}
        for name in ("organisation", "reason_nb", "reason_en"):
            if getattr(self, name) is not None:
                result[name] = getattr(self, name)
        dates = {
            name: value.isoformat()
            for name in ("sent", "received", "assessed", "deadline", "appointment")
            if (value := getattr(self, name)) is not None
        }
        if dates:
            result["dates"] = dates
        return result


def _display(reference: Any) -> str | None:
    if isinstance(reference, dict) and isinstance(reference.get("display"), str):
        return str(reference["display"])
    return None


def _organisation(service_request: Mapping[str, Any], task: Mapping[str, Any] | None) -> str | None:
    if task is not None and (name := _display(task.get("owner"))):
        return name
    performers = service_request.get("performer")
    return _display(performers[0]) if isinstance(performers, list) and performers else None


def _booked_start(appointment: Mapping[str, Any] | None) -> datetime | None:
    if appointment is None or appointment.get("status") not in BOOKED:
        return None
    return parse_datetime(appointment.get("start"))


def _state(
    service_request: Mapping[str, Any], task: Mapping[str, Any] | None, appointment_at: datetime | None
) -> PatientState:
    if service_request.get("status") == "revoked" or (task is not None and status(dict(task)) == "cancelled"):
        return PatientState.CANCELLED
    if task is None:
        return PatientState.SENT
    current, step = status(dict(task)), business_status(dict(task))
    if current == TaskStatus.REJECTED:
        return PatientState.REJECTED
    if current == TaskStatus.COMPLETED:
        return PatientState.COMPLETED
    if current == TaskStatus.REQUESTED:
        return PatientState.FORWARDED if step == BusinessStatus.VIDERESENDT else PatientState.SENT
    if current == TaskStatus.RECEIVED:
        return PatientState.ASSESSED if step == BusinessStatus.RETT else PatientState.RECEIVED
    if current in (TaskStatus.ACCEPTED, TaskStatus.ON_HOLD, TaskStatus.IN_PROGRESS):
        return PatientState.APPOINTMENT if appointment_at is not None else PatientState.ASSESSED
    return PatientState.SENT  # draft or a status this workflow does not use


def _nb(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _texts(view: PatientStatus, conversation: bool) -> tuple[str, str]:
    org_nb = f" {view.organisation}" if view.organisation else ""
    org_en = f" {view.organisation}" if view.organisation else ""
    match view.state:
        case PatientState.SENT:
            return f"Henvisningen er sendt{' til' + org_nb if org_nb else ''}.", (
                f"The referral has been sent{' to' + org_en if org_en else ''}."
            )
        case PatientState.RECEIVED if conversation:
            return (
                f"Du får tilbud om en vurderingssamtale{' hos' + org_nb if org_nb else ''}.",
                f"You are offered an assessment conversation{' with' + org_en if org_en else ''}.",
            )
        case PatientState.RECEIVED:
            return (
                f"Henvisningen er mottatt{' av' + org_nb if org_nb else ''} og blir vurdert innen 10 virkedager.",
                f"The referral has been received{' by' + org_en if org_en else ''} and will be assessed "
                "within 10 working days.",
            )
        case PatientState.ASSESSED if view.deadline is not None:
            return (
                "Henvisningen er vurdert. Du har rett til nødvendig helsehjelp, og helsehjelpen skal starte "
                f"senest {_nb(view.deadline)}.",
                "The referral has been assessed. You are entitled to necessary specialist care, which must "
                f"start no later than {view.deadline.isoformat()}.",
            )
        case PatientState.ASSESSED:
            return "Henvisningen er vurdert.", "The referral has been assessed."
        case PatientState.APPOINTMENT:
            when = view.appointment.astimezone(OSLO) if view.appointment else None
            nb_when = f" {_nb(when.date())} kl. {when:%H:%M}" if when else ""
            en_when = f" on {when.date().isoformat()} at {when:%H:%M}" if when else ""
            return f"Du har fått time{' hos' + org_nb if org_nb else ''}{nb_when}.", (
                f"You have an appointment{' with' + org_en if org_en else ''}{en_when}."
            )
        case PatientState.COMPLETED:
            return (
                "Helsehjelpen etter henvisningen er avsluttet.",
                "Care for this referral has been completed.",
            )
        case PatientState.REJECTED:
            return (
                f"Henvisningen er avslått{' av' + org_nb if org_nb else ''}."
                + (f" Årsak: {view.reason_nb}." if view.reason_nb else ""),
                f"The referral has been declined{' by' + org_en if org_en else ''}."
                + (f" Reason: {view.reason_en}." if view.reason_en else ""),
            )
        case PatientState.FORWARDED:
            return (
                f"Henvisningen er sendt videre{' til' + org_nb if org_nb else ''}.",
                f"The referral has been forwarded{' to' + org_en if org_en else ''}.",
            )
        case PatientState.CANCELLED:
            return "Henvisningen er trukket tilbake.", "The referral has been withdrawn."
    raise AssertionError(view.state)  # pragma: no cover - every state has a case


def _rejection_reason(task: Mapping[str, Any]) -> tuple[str | None, str | None]:
    reason = task.get("statusReason")
    for c in reason.get("coding", []) if isinstance(reason, dict) else ():
        if isinstance(c, dict) and c.get("system") == REJECTION_REASON_SYSTEM:
            found = concept(REJECTION_REASON_SYSTEM, str(c.get("code")))
            if found is not None:
                return found.nb, found.en
    return None, None


_DECIDED = frozenset(
    {PatientState.ASSESSED, PatientState.APPOINTMENT, PatientState.COMPLETED, PatientState.REJECTED}
)


def patient_status(
    service_request: Mapping[str, Any],
    task: Mapping[str, Any] | None = None,
    appointment: Mapping[str, Any] | None = None,
) -> PatientStatus:
    """The citizen's view of one referral. `task` may be None right after sending."""
    appointment_at = _booked_start(appointment)
    state = _state(service_request, task, appointment_at)
    plain: dict[str, Any] = dict(task) if task is not None else {}
    sent = parse_date(service_request.get("authoredOn")) or parse_date(plain.get("authoredOn"))
    decided = state in _DECIDED
    reason_nb, reason_en = _rejection_reason(plain) if state is PatientState.REJECTED else (None, None)
    view = PatientStatus(
        state=state,
        text_nb="",
        text_en="",
        organisation=_organisation(service_request, task),
        sent=sent,
        received=received_date(plain) if state is not PatientState.SENT else None,
        assessed=output_date(plain, Output.ASSESSED) if decided else None,
        deadline=care_deadline(plain) if decided and state is not PatientState.REJECTED else None,
        appointment=appointment_at if state is PatientState.APPOINTMENT else None,
        reason_nb=reason_nb,
        reason_en=reason_en,
    )
    conversation = business_status(plain) == BusinessStatus.VURDERINGSSAMTALE_TILBUDT
    text_nb, text_en = _texts(view, conversation)
    return replace(view, text_nb=text_nb, text_en=text_en)
