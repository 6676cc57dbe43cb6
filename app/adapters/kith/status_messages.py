"""Status messages to referrers that are not on FHIR: a Dialogmelding 1.1 DIALOG_STATUS_HENVISNING for each
step of a KITH-received referral that the referrer must hear of (received, right to care with its deadline,
not entitled, forwarded, assessment conversation offered, appointment given).

The referral operations call `dialogmelding_observer` before they store a step; it returns an outgoing
`Communication` (status `preparation`, the XML as its payload, the referrer as recipient) that is stored in
the same transaction as the new Task version. The gateway to the health network collects these with
`GET /Communication?category=<MESSAGE_CATEGORY_SYSTEM>|outgoing&status=preparation`, sends them, and marks
each `completed` when the referrer's AppRec comes back (see intake.py: an AppRec posted to
`/$kith-message` does that itself).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.adapters.kith import _fhir_common as f
from app.adapters.kith.dialogmelding import (
    TYPE_STATUS,
    Dialogmelding,
    ReferralStatus,
    StatusNote,
    build_dialogmelding,
    status_text,
)
from app.adapters.kith.intake import outgoing_message
from app.adapters.kith.model import OriginalReference, Referral
from app.adapters.kith.stored import stored_referral
from app.adapters.kith.xmlsafe import to_bytes
from app.resources.referrals.codes import BusinessStatus, Output, TaskStatus
from app.resources.referrals.operations import StatusChange
from app.resources.referrals.taskjson import (
    OSLO,
    Task,
    business_status,
    care_deadline,
    output,
    parse_datetime,
    reference_key,
    status,
)

Json = dict[str, Any]
DIALOGMELDING_TITLE = "Dialogmelding"

_BY_BUSINESS_STATUS = {
    BusinessStatus.MOTTATT: ReferralStatus.RECEIVED,
    BusinessStatus.RETT: ReferralStatus.RIGHT_TO_CARE,
    BusinessStatus.VIDERESENDT: ReferralStatus.FORWARDED,
    BusinessStatus.VURDERINGSSAMTALE_TILBUDT: ReferralStatus.ASSESSMENT_CONVERSATION,
    BusinessStatus.TIME_TILDELT: ReferralStatus.APPOINTMENT_GIVEN,
}


@dataclass(frozen=True)
class StatusNews:
    status: ReferralStatus
    deadline: date | None = None
    appointment: str | None = None  # reference of the Appointment given


def status_news(old: Task, new: Task) -> StatusNews | None:
    """What the referrer must be told of this step, if anything: a new businessStatus it has a status for,
    or a rejection (whatever the businessStatus: ikke rett, or a duplicate). An assessment that is not yet
    a decision ("vurdert") is not news."""
    if status(new) == TaskStatus.REJECTED and status(old) != TaskStatus.REJECTED:
        return StatusNews(ReferralStatus.NOT_ENTITLED)
    now = business_status(new)
    if now == business_status(old) or now not in set(BusinessStatus):
        return None  # accepting, holding, starting, completing: nothing a status message carries
    found = _BY_BUSINESS_STATUS.get(BusinessStatus(now))
    if found is None:
        return None
    appointment = reference_key(output(new, Output.APPOINTMENT))
    return StatusNews(
        found, care_deadline(new), appointment if found is ReferralStatus.APPOINTMENT_GIVEN else None
    )


def is_kith_referral(resource: Json) -> bool:
    """A referral's ServiceRequest or Task written from a KITH message (identified by its document id)."""
    return any(i.get("system") == f.DOCUMENT_ID_SYSTEM for i in resource.get("identifier", []))


def build_status_message(
    referral: Referral, news: StatusNews, appointment_start: datetime | None, now: datetime
) -> Dialogmelding:
    """From the receiver of the referral back to its sender, in the referral's conversation."""
    local_now = now.astimezone(OSLO).replace(tzinfo=None, microsecond=0)
    text = status_text(news.status.value[1], deadline=news.deadline, appointment=appointment_start)
    conversation = referral.original.conversation_id if referral.original else referral.msg_id
    return Dialogmelding(
        msg_id=str(uuid.uuid4()),
        gen_date=local_now,
        sender=referral.receiver,
        receiver=referral.sender,
        notes=(StatusNote(status=news.status.coded, text=text, note_date=local_now.date()),),
        referral=OriginalReference(parent_id=referral.msg_id, conversation_id=conversation),
        patient=referral.patient,
        issue_date=local_now,
    )


def outgoing_record(message: Dialogmelding, xml: bytes, service_request: Json, task_id: str) -> Json:
    """The outgoing Communication of a status message, about the referral, to its referrer."""
    requester = service_request.get("requester")
    return outgoing_message(
        TYPE_STATUS,
        message.msg_id,
        DIALOGMELDING_TITLE,
        xml,
        based_on=f"Task/{task_id}",
        about=f"ServiceRequest/{service_request['id']}",
        subject=service_request.get("subject"),
        recipients=[requester] if requester is not None else (),
    )


async def dialogmelding_observer(change: StatusChange) -> list[Json]:
    """A status message for a referral that came as a KITH message (its referrer is not on FHIR)."""
    news = status_news(change.old, change.new)
    focus = reference_key(change.new.get("focus"))
    # The Task of a KITH referral carries the referral's document id too: others are passed over unread.
    if news is None or not is_kith_referral(change.new) or not (focus or "").startswith("ServiceRequest/"):
        return []
    service_request = await change.engine.read_resource(change.ctx, focus)
    assert service_request is not None
    appointment_start = None
    wanted = news.appointment if (news.appointment or "").startswith("Appointment/") else None
    appointment = await change.engine.read_resource(change.ctx, wanted)
    if appointment is not None:
        appointment_start = parse_datetime(appointment.get("start"))
        if appointment_start is not None:
            appointment_start = appointment_start.astimezone(OSLO)
    referral = await stored_referral(change.engine, change.ctx, service_request, change.new)
    message = build_status_message(referral, news, appointment_start, change.at)
    xml = to_bytes(build_dialogmelding(message))
    return [outgoing_record(message, xml, service_request, change.task_id)]
