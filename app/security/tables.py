"""Access facts: what the access policy needs, derived from resources when they are written.

The policy is evaluated in SQL against these small tables (never by parsing resources at request time):
- sec_party_identity: who a Patient, RelatedPerson, Practitioner, PractitionerRole or Organization *is*
  in token terms ("pid:<fødselsnummer>", "hpr:<number>", "org:<orgnr>") or which other resource it stands
  for ("ref:Practitioner/1" for a PractitionerRole).
- sec_access_fact: care relations, proxies (fullmakt, parents), consent blocks (sperring), reservations
  and authorship, each tied to the resource that states it (rebuilt whenever that resource is written).
- sec_emergency_access: granted break-the-glass access (akuttilgang), time-limited.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text

from app.store.tables import BigId, UtcDateTime, metadata

party_identity = Table(
    "sec_party_identity",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("ref_type", String(64), nullable=False),
    Column("ref_id", String(64), nullable=False),
    Column("party", String(200), nullable=False),
    Index("ix_sec_party_identity_party", "party"),
    Index("ix_sec_party_identity_source_pk", "source_pk"),
)

access_fact = Table(
    "sec_access_fact",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    # care, proxy, parent, block, reservation, author
    Column("kind", String(16), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("party", String(200), nullable=True),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("valid_from", UtcDateTime, nullable=True),
    Column("valid_until", UtcDateTime, nullable=True),
    Index("ix_sec_access_fact_kind_patient", "kind", "patient_id"),
    Index("ix_sec_access_fact_kind_party", "kind", "party"),
    Index("ix_sec_access_fact_kind_target", "kind", "target_type", "target_id"),
    Index("ix_sec_access_fact_source_pk", "source_pk"),
)

emergency_access = Table(
    "sec_emergency_access",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("hpr", String(20), nullable=False),
    Column("orgnr", String(20), nullable=True),
    Column("patient_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("granted_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_sec_emergency_access_hpr_patient", "hpr", "patient_id"),
)

SECURITY_TABLES = (party_identity, access_fact, emergency_access)
