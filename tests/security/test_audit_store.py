"""The audit trail's rows: ids."""

from __future__ import annotations

import re
import time
import uuid

from app.security.audit_store import time_ordered_id


def test_audit_event_ids_are_uuid7_in_time_order_and_unique() -> None:
    ids = [time_ordered_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert all(re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", i) for i in ids[:100])  # a valid FHIR id
    millis = [u.int >> 80 for u in parsed]
    assert millis == sorted(millis)  # later events sort after earlier ones
    assert abs(millis[-1] - time.time() * 1000) < 5_000
