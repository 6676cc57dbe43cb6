"""Keep the access facts of a resource in step with it: replaced in the unit of work of every write (and
of $reindex), so the policy never sees a resource without its facts or facts without their resource."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert

from app.fhir.hooks import WriteEvent
from app.security.facts import DERIVED_TYPES, derive
from app.security.tables import access_fact, party_identity


async def store_facts(event: WriteEvent, days_after_end: int, base_url: str) -> None:
    assert event.pk is not None
    if event.res_type not in DERIVED_TYPES:
        return  # most writes (observations, documents, ...) state no access facts: no statements at all
    conn, pk = event.conn, event.pk
    await conn.execute(delete(party_identity).where(party_identity.c.source_pk == pk))
    # Authorship is recorded by the security layer when the resource is created, not derived from it.
    await conn.execute(
        delete(access_fact).where(access_fact.c.source_pk == pk, access_fact.c.kind != "author")
    )
    if event.resource is None:
        return
    derived = derive(
        event.res_type, event.res_id, event.resource, datetime.now(UTC), days_after_end, base_url
    )
    if derived.identities:
        await conn.execute(
            insert(party_identity),
            [
                {"source_pk": pk, "ref_type": event.res_type, "ref_id": event.res_id, "party": party}
                for party in derived.identities
            ],
        )
    if derived.facts:
        await conn.execute(
            insert(access_fact),
            [
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
            ],
        )
