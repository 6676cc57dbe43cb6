"""audit trail: AuditEvents move from the resource tables to the append-only audit_event / audit_patient

Upgrade creates the tables and moves every stored AuditEvent into them (same id, the stored bytes kept
as they are; the search columns and patients read from the JSON), then deletes the old resource rows,
whose version and index rows go with them (ON DELETE CASCADE). Downgrade puts the events back as version-1
resources without index rows (`POST /AuditEvent/$reindex` rebuilds those) and drops the tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from app.security.audit_store import event_rows

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_resource = sa.table(
    "resource",
    sa.column("pk", sa.BigInteger()),
    sa.column("res_type", sa.String()),
    sa.column("res_id", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("last_updated", sa.DateTime(timezone=True)),
    sa.column("deleted", sa.Boolean()),
    sa.column("content", sa.LargeBinary()),
)
_resource_version = sa.table(
    "resource_version",
    sa.column("res_pk", sa.BigInteger()),
    sa.column("res_type", sa.String()),
    sa.column("res_id", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("last_updated", sa.DateTime(timezone=True)),
    sa.column("method", sa.String()),
    sa.column("content", sa.LargeBinary()),
)


def upgrade() -> None:
    events = op.create_table(
        "audit_event",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=1), nullable=False),
        sa.Column("subtype", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=2), nullable=False),
        sa.Column("flag", sa.String(length=32), nullable=True),
        sa.Column("who_system", sa.String(length=200), nullable=True),
        sa.Column("who_value", sa.String(length=200), nullable=True),
        sa.Column("altid", sa.String(length=200), nullable=True),
        sa.Column("client_id", sa.String(length=200), nullable=True),
        sa.Column("orgnr", sa.String(length=20), nullable=True),
        sa.Column("sub_orgnr", sa.String(length=20), nullable=True),
        sa.Column("entity_type", sa.String(length=64), nullable=True),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_recorded", ["recorded", "id"], unique=False)
        batch_op.create_index("ix_audit_event_who_value", ["who_value", "recorded"], unique=False)
        batch_op.create_index("ix_audit_event_client_id", ["client_id", "recorded"], unique=False)
        batch_op.create_index("ix_audit_event_orgnr", ["orgnr", "recorded"], unique=False)
        batch_op.create_index("ix_audit_event_flag", ["flag", "recorded"], unique=False)
        batch_op.create_index("ix_audit_event_entity", ["entity_type", "entity_id"], unique=False)
        batch_op.create_index("ix_audit_event_request_id", ["request_id"], unique=False)

    patients = op.create_table(
        "audit_patient",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["audit_event.id"],
            name=op.f("fk_audit_patient_event_id_audit_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "patient_id", name=op.f("pk_audit_patient")),
    )
    with op.batch_alter_table("audit_patient", schema=None) as batch_op:
        batch_op.create_index("ix_audit_patient_patient_id", ["patient_id", "event_id"], unique=False)

    _move_audit_events(events, patients)


def _move_audit_events(events: sa.Table, patients: sa.Table) -> None:
    conn = op.get_bind()
    r = _resource.c
    last_pk = -1
    while True:
        batch = conn.execute(
            sa.select(r.pk, r.res_id, r.content)
            .where(r.res_type == "AuditEvent", r.pk > last_pk, r.content.is_not(None))
            .order_by(r.pk)
            .limit(_BATCH)
        ).all()
        if not batch:
            break
        last_pk = batch[-1].pk
        rows: list[dict[str, Any]] = []
        about: list[dict[str, str]] = []
        for _, res_id, content in batch:
            row, event_patients = event_rows(orjson.loads(content), res_id)
            row["content"] = content  # served as it was stored
            rows.append(row)
            about += event_patients
        conn.execute(events.insert(), rows)
        if about:
            conn.execute(patients.insert(), about)
    conn.execute(sa.delete(_resource).where(r.res_type == "AuditEvent"))


def downgrade() -> None:
    conn = op.get_bind()
    events = sa.table(
        "audit_event",
        sa.column("id", sa.String()),
        sa.column("recorded", sa.DateTime(timezone=True)),
        sa.column("content", sa.LargeBinary()),
    )
    r = _resource.c
    conn.execute(
        sa.insert(_resource).from_select(
            ["res_type", "res_id", "version", "last_updated", "deleted", "content"],
            sa.select(
                sa.literal("AuditEvent"),
                events.c.id,
                sa.literal(1),
                events.c.recorded,
                sa.false(),
                events.c.content,
            ),
        )
    )
    conn.execute(
        sa.insert(_resource_version).from_select(
            ["res_pk", "res_type", "res_id", "version", "last_updated", "method", "content"],
            sa.select(
                r.pk, r.res_type, r.res_id, r.version, r.last_updated, sa.literal("POST"), r.content
            ).where(r.res_type == "AuditEvent", r.res_id.in_(sa.select(events.c.id))),
        )
    )
    with op.batch_alter_table("audit_patient", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_patient_patient_id")

    op.drop_table("audit_patient")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_request_id")
        batch_op.drop_index("ix_audit_event_entity")
        batch_op.drop_index("ix_audit_event_flag")
        batch_op.drop_index("ix_audit_event_orgnr")
        batch_op.drop_index("ix_audit_event_client_id")
        batch_op.drop_index("ix_audit_event_who_value")
        batch_op.drop_index("ix_audit_event_recorded")

    op.drop_table("audit_event")
