"""The outbox's pure rules: a handover claimed on the record counts the attempt, and a record that has had
every allowed attempt is given up with a reason an operator can read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.adapters.kith import intake
from app.adapters.kith.dialogmelding import TYPE_STATUS
from app.adapters.transport import outbox

AT = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def record() -> outbox.Json:
    stored = intake.outgoing_message(
        TYPE_STATUS,
        "2b0c9a2e-4c1f-4a57-9d0e-7b3f1c2d4e5f",
        "Dialogmelding",
        b"<Dialogmelding/>",
        based_on="ServiceRequest/henvisning",
        about="ServiceRequest/henvisning",
        subject={"reference": "Patient/kari"},
    )
    return {**stored, "id": "melding", "meta": {"versionId": "1"}}


def test_a_record_never_handed_over_has_no_attempts_and_is_due() -> None:
    new = record()
    assert outbox.attempts(new) == 0
    assert outbox.due(new, AT, timedelta(minutes=15))
    assert not outbox.exhausted(new, 1)


def test_each_claim_sets_sent_and_counts_one_more_attempt_in_one_extension() -> None:
    first = outbox.claimed(record(), AT)
    second = outbox.claimed(first, AT + timedelta(minutes=15))
    assert outbox.attempts(first) == 1
    assert outbox.attempts(second) == 2
    assert second["sent"] == "2026-03-02T08:45:00+00:00"  # the latest attempt
    assert [e["url"] for e in second["extension"]] == [outbox.SEND_ATTEMPTS_EXTENSION]
    assert second["status"] == "preparation"
    assert not outbox.due(second, AT + timedelta(minutes=20), timedelta(minutes=15))
    assert outbox.due(second, AT + timedelta(minutes=30), timedelta(minutes=15))


def test_a_record_sent_before_attempts_were_counted_counts_as_sent_once() -> None:
    assert outbox.attempts({**record(), "sent": "2026-03-02T09:30:00+01:00"}) == 1


def test_a_record_with_every_attempt_made_is_exhausted_and_given_up_saying_why() -> None:
    sent = record()
    for minutes in (0, 15, 30):
        sent = outbox.claimed(sent, AT + timedelta(minutes=minutes))
    assert not outbox.exhausted(sent, 4)
    assert outbox.exhausted(sent, 3)
    failed = outbox.given_up(sent)
    assert failed["status"] == "not-done"
    assert failed["statusReason"] == {"text": "Ingen applikasjonskvittering mottatt etter 3 sendeforsøk"}
    assert failed["sent"] == sent["sent"]
    assert not outbox.due(failed, AT + timedelta(days=1), timedelta(minutes=15))
