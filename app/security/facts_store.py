"""Keep the access facts of a resource in step with it: replaced in the unit of work of every write (and
of $reindex), so the policy never sees a resource without its facts or facts without their resource."""

from __future__ import annotations

from datetime import UTC, datetime

from app.fhir.hooks import WriteEvent
from app.security.facts import DERIVED_TYPES, derive
from app.security.tables import access_fact, party_identity
from app.store.row_writes import RowDelete, RowInsert, write_rows


async def store_facts(event: WriteEvent, days_after_end: int, base_url: str) -> None:
    assert event.pk is not None
    if event.res_type not in DERIVED_TYPES:
        return  # most writes (observations, documents, ...) state no access facts: no statements at all
    pk = event.pk
    steps: list[RowDelete | RowInsert] = []
    if event.interaction != "create":  # a new resource has no facts yet: nothing to remove
        steps.append(RowDelete(party_identity, "source_pk", pk))
        # Authorship is recorded by the security layer when the resource is created, not derived from it.
        steps.append(RowDelete(access_fact, "source_pk", pk, keep=("kind", "author")))
    if event.resource is not None:
        derived = derive(
            event.res_type, event.res_id, event.resource, datetime.now(UTC), days_after_end, base_url
        )
        identities = [
            {"source_pk": pk, "ref_type": event.res_type, "ref_id": event.res_id, "party": party}
            for party in derived.identities
        ]
        facts = [
            {
                "source_pk": pk,
                "kind": f.kind,
                "patient_id": f.patient_id,
                "party": f.party,
                "target_type": f.target[0] if f.target else None,
                "target_id": f.target[1] if f.target else None,
                "valid_from": f.valid_from,
                "valid_until": f.valid_until,
            }
            for f in derived.facts
        ]
        steps += [RowInsert(party_identity, identities), RowInsert(access_fact, facts)]
    await write_rows(event.conn, steps)  # one trip (none for a create that states no facts)
