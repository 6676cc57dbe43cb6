"""access facts: care relations, proxies, consent blocks, reservations, emergency access

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "sec_emergency_access",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("hpr", sa.String(length=20), nullable=False),
        sa.Column("orgnr", sa.String(length=20), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sec_emergency_access")),
    )
    with op.batch_alter_table("sec_emergency_access", schema=None) as batch_op:
        batch_op.create_index("ix_sec_emergency_access_hpr_patient", ["hpr", "patient_id"], unique=False)

    op.create_table(
        "sec_access_fact",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("party", sa.String(length=200), nullable=True),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["resource.pk"],
            name=op.f("fk_sec_access_fact_source_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sec_access_fact")),
    )
    with op.batch_alter_table("sec_access_fact", schema=None) as batch_op:
        batch_op.create_index("ix_sec_access_fact_kind_party", ["kind", "party"], unique=False)
        batch_op.create_index("ix_sec_access_fact_kind_patient", ["kind", "patient_id"], unique=False)
        batch_op.create_index(
            "ix_sec_access_fact_kind_target", ["kind", "target_type", "target_id"], unique=False
        )
        batch_op.create_index("ix_sec_access_fact_source_pk", ["source_pk"], unique=False)

    op.create_table(
        "sec_party_identity",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ref_type", sa.String(length=64), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["resource.pk"],
            name=op.f("fk_sec_party_identity_source_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sec_party_identity")),
    )
    with op.batch_alter_table("sec_party_identity", schema=None) as batch_op:
        batch_op.create_index("ix_sec_party_identity_party", ["party"], unique=False)
        batch_op.create_index("ix_sec_party_identity_source_pk", ["source_pk"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("sec_party_identity", schema=None) as batch_op:
        batch_op.drop_index("ix_sec_party_identity_source_pk")
        batch_op.drop_index("ix_sec_party_identity_party")

    op.drop_table("sec_party_identity")
    with op.batch_alter_table("sec_access_fact", schema=None) as batch_op:
        batch_op.drop_index("ix_sec_access_fact_source_pk")
        batch_op.drop_index("ix_sec_access_fact_kind_target")
        batch_op.drop_index("ix_sec_access_fact_kind_patient")
        batch_op.drop_index("ix_sec_access_fact_kind_party")

    op.drop_table("sec_access_fact")
    with op.batch_alter_table("sec_emergency_access", schema=None) as batch_op:
        batch_op.drop_index("ix_sec_emergency_access_hpr_patient")

    op.drop_table("sec_emergency_access")
