"""The citizen's view of a referral in every state, and that internal notes never reach it."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest

from app.resources.referrals.patient_view import PatientState, patient_status
from app.resources.referrals.taskjson import OSLO
from tests.resources.referrals.builders import (
    CARE_DEADLINE,
    INTERNAL,
    STATES,
    accepted,
    appointment_given,
    assessed_right,
    in_progress,
)

SERVICE_REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "id": "sr-1",
    "status": "active",
    "intent": "order",
    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
    "subject": {"reference": "Patient/p-1"},
    "authoredOn": "2025-03-01T10:00:00+01:00",
    "performer": [{"reference": "Organization/hospital-a", "display": "Sykehuset Aust"}],
    "note": [{"text": f"{INTERNAL}: henvisers merknad"}],
}
BOOKED: dict[str, Any] = {
    "resourceType": "Appointment",
    "status": "booked",
    "start": "2025-04-02T08:30:00+00:00",
    "description": f"{INTERNAL}: avtale",
    "comment": f"{INTERNAL}: kommentar",
    "participant": [{"actor": {"reference": "Patient/p-1"}, "status": "accepted"}],
}

EXPECTED = {
    "requested": PatientState.SENT,
    "received": PatientState.RECEIVED,
    "assessed-right": PatientState.ASSESSED,
    "assessed-not-entitled": PatientState.RECEIVED,  # not told until the rejection is made
    "assessed-needs-conversation": PatientState.RECEIVED,
    "conversation-offered": PatientState.RECEIVED,
    "forwarded": PatientState.FORWARDED,
    "accepted": PatientState.ASSESSED,
    "appointment-given": PatientState.ASSESSED,  # no Appointment passed
    "on-hold": PatientState.ASSESSED,
    "in-progress": PatientState.ASSESSED,
    "completed": PatientState.COMPLETED,
    "rejected": PatientState.REJECTED,
    "cancelled": PatientState.CANCELLED,
}


WITH_APPOINTMENT = {"accepted", "appointment-given", "on-hold", "in-progress"}


@pytest.mark.parametrize("with_appointment", [False, True])
@pytest.mark.parametrize("state", list(STATES))
def test_state_and_no_internal_text(state: str, with_appointment: bool) -> None:
    view = patient_status(SERVICE_REQUEST, STATES[state](), BOOKED if with_appointment else None)
    booked = with_appointment and state in WITH_APPOINTMENT
    assert view.state is (PatientState.APPOINTMENT if booked else EXPECTED[state])
    assert INTERNAL not in json.dumps(view.to_dict(), ensure_ascii=False)
    assert view.text_nb
    assert view.text_en
    assert view.sent == date(2025, 3, 1)


def test_sent_without_a_task() -> None:
    view = patient_status(SERVICE_REQUEST)
    assert view.state is PatientState.SENT
    assert view.organisation == "Sykehuset Aust"
    assert view.text_nb == "Henvisningen er sendt til Sykehuset Aust."
    assert view.to_dict() == {
        "state": "sent",
        "text": {"nb": view.text_nb, "en": "The referral has been sent to Sykehuset Aust."},
        "organisation": "Sykehuset Aust",
        "dates": {"sent": "2025-03-01"},
    }


def test_received() -> None:
    view = patient_status(SERVICE_REQUEST, STATES["received"]())
    assert view.received == date(2025, 3, 3)
    assert view.assessed is None
    assert view.deadline is None
    assert "10 virkedager" in view.text_nb


def test_assessed_shows_the_deadline() -> None:
    view = patient_status(SERVICE_REQUEST, assessed_right())
    assert view.assessed == date(2025, 3, 5)
    assert view.deadline == CARE_DEADLINE
    assert "02.05.2025" in view.text_nb
    assert "2025-05-02" in view.text_en
    assert patient_status(SERVICE_REQUEST, accepted()).deadline == CARE_DEADLINE


def test_not_entitled_before_rejection_hides_the_assessment() -> None:
    view = patient_status(SERVICE_REQUEST, STATES["assessed-not-entitled"]())
    assert view.assessed is None


def test_appointment_in_oslo_time() -> None:
    view = patient_status(SERVICE_REQUEST, appointment_given(), BOOKED)
    assert view.state is PatientState.APPOINTMENT
    assert view.appointment == datetime(2025, 4, 2, 10, 30, tzinfo=OSLO)
    assert view.text_nb == "Du har fått time hos Sykehuset Aust 02.04.2025 kl. 10:30."
    assert view.to_dict()["dates"]["appointment"] == "2025-04-02T08:30:00+00:00"
    assert view.deadline == CARE_DEADLINE
    assert patient_status(SERVICE_REQUEST, in_progress(), BOOKED).state is PatientState.APPOINTMENT


@pytest.mark.parametrize("status", ["proposed", "pending", "cancelled", "noshow"])
def test_an_appointment_that_is_not_booked_is_ignored(status: str) -> None:
    view = patient_status(SERVICE_REQUEST, appointment_given(), {**BOOKED, "status": status})
    assert view.state is PatientState.ASSESSED
    assert view.appointment is None


def test_conversation_offered() -> None:
    view = patient_status(SERVICE_REQUEST, STATES["conversation-offered"]())
    assert "vurderingssamtale" in view.text_nb


def test_rejected_shows_the_coded_reason_only() -> None:
    view = patient_status(SERVICE_REQUEST, STATES["rejected"]())
    assert view.state is PatientState.REJECTED
    assert view.reason_nb == "Ikke behov for spesialisthelsetjenester"
    assert view.reason_en == "No need for specialist care"
    assert view.deadline is None
    assert view.assessed == date(2025, 3, 5)


def test_forwarded_names_the_new_unit() -> None:
    view = patient_status(SERVICE_REQUEST, STATES["forwarded"]())
    assert view.organisation == "Sykehuset Vest"
    assert view.text_nb == "Henvisningen er sendt videre til Sykehuset Vest."


def test_revoked_service_request_is_cancelled() -> None:
    view = patient_status({**SERVICE_REQUEST, "status": "revoked"}, STATES["received"]())
    assert view.state is PatientState.CANCELLED
    assert (
        patient_status(SERVICE_REQUEST, STATES["cancelled"]()).text_en == "The referral has been withdrawn."
    )


def test_completed() -> None:
    view = patient_status(SERVICE_REQUEST, STATES["completed"](), BOOKED)
    assert view.state is PatientState.COMPLETED
    assert view.appointment is None
