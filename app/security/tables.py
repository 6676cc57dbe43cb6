"""Access facts: what the access policy needs, derived from resources when they are written.

The policy is evaluated in SQL against these small tables (never by parsing resources at request time):
- sec_party_identity: who a Patient, RelatedPerson, Practitioner, PractitionerRole or Organization *is*
  in token terms ("pid:<fødselsnummer>", "hpr:<number>", "org:<orgnr>") or which other resource it stands
  for ("ref:Practitioner/1" for a PractitionerRole).
- sec_access_fact: care relations, proxies (fullmakt, parents), consent blocks (sperring), reservations
  and authorship, each tied to the resource that states it (rebuilt whenever that resource is written).
- sec_emergency_access: granted break-the-glass access (akuttilgang), time-limited.

And the audit trail (append-only, served as AuditEvent by app/security/audit_trail.py):
- audit_event: one row per recorded access, the AuditEvent's canonical JSON as served plus the columns its
  searches need; audit_patient: the patients each event is about.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, LargeBinary, String, Table, Text

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

# Written on every audited read (group commit), never updated: one row and one index entry per search
# column that the trail is actually searched by, instead of a versioned resource with 17 index rows.
audit_event = Table(
    "audit_event",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("recorded", UtcDateTime, nullable=False),  # AuditEvent.recorded, also its meta.lastUpdated
    Column("action", String(1), nullable=False),  # C R U D E
    Column("subtype", String(32), nullable=False),  # restful-interaction code
    Column("outcome", String(2), nullable=False),  # 0 4 8 12
    Column("flag", String(32), nullable=True),  # audit-flag code (meta.tag), e.g. emergency-access
    # The requesting user (HPR, fødselsnummer/D-nummer, or the token subject's issuer), NULL for a system
    # client acting on its own; the token subject (altId); the client and the organisations.
    Column("who_system", String(200), nullable=True),
    Column("who_value", String(200), nullable=True),
    Column("altid", String(200), nullable=True),
    Column("client_id", String(200), nullable=True),
    Column("orgnr", String(20), nullable=True),
    Column("sub_orgnr", String(20), nullable=True),
    Column("entity_type", String(64), nullable=True),  # the resource read or written, if one
    Column("entity_id", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("content", LargeBinary, nullable=False),
    Index("ix_audit_event_recorded", "recorded", "id"),
    Index("ix_audit_event_who_value", "who_value", "recorded"),
    Index("ix_audit_event_client_id", "client_id", "recorded"),
    Index("ix_audit_event_orgnr", "orgnr", "recorded"),
    Index("ix_audit_event_flag", "flag", "recorded"),
    Index("ix_audit_event_entity", "entity_type", "entity_id"),
    Index("ix_audit_event_request_id", "request_id"),
)

audit_patient = Table(
    "audit_patient",
    metadata,
    Column("event_id", String(64), ForeignKey("audit_event.id", ondelete="CASCADE"), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Index("ix_audit_patient_patient_id", "patient_id", "event_id"),
)

SECURITY_TABLES = (party_identity, access_fact, emergency_access)
AUDIT_TABLES = (audit_event, audit_patient)
