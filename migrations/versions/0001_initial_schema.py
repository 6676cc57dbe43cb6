"""resources, versions, token index, conditional create keys

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "resource",
        sa.Column("pk", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_resource")),
        sa.UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
    )
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index("ix_resource_type_updated", ["res_type", "last_updated"], unique=False)

    op.create_table(
        "conditional_create",
        sa.Column("criteria_hash", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"],
            ["resource.pk"],
            name=op.f("fk_conditional_create_res_pk_resource"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("criteria_hash", name=op.f("pk_conditional_create")),
    )
    with op.batch_alter_table("conditional_create", schema=None) as batch_op:
        batch_op.create_index("ix_conditional_create_res_pk", ["res_pk"], unique=False)

    op.create_table(
        "idx_token",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("hash_value", sa.BigInteger(), nullable=False),
        sa.Column("hash_sys_value", sa.BigInteger(), nullable=False),
        sa.Column("hash_sys", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_token_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_token")),
    )
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.create_index("ix_idx_token_hash_sys", ["hash_sys"], unique=False)
        batch_op.create_index("ix_idx_token_hash_sys_value", ["hash_sys_value"], unique=False)
        batch_op.create_index("ix_idx_token_hash_value", ["hash_value"], unique=False)
        batch_op.create_index("ix_idx_token_res_pk", ["res_pk"], unique=False)

    op.create_table(
        "resource_version",
        sa.Column("seq", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_resource_version_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_resource_version")),
        sa.UniqueConstraint("res_type", "res_id", "version", name="uq_resource_version_type_id_version"),
    )
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.create_index("ix_resource_version_type_seq", ["res_type", "seq"], unique=False)
        batch_op.create_index("ix_resource_version_updated", ["last_updated"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_version_updated")
        batch_op.drop_index("ix_resource_version_type_seq")

    op.drop_table("resource_version")
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_token_res_pk")
        batch_op.drop_index("ix_idx_token_hash_value")
        batch_op.drop_index("ix_idx_token_hash_sys_value")
        batch_op.drop_index("ix_idx_token_hash_sys")

    op.drop_table("idx_token")
    with op.batch_alter_table("conditional_create", schema=None) as batch_op:
        batch_op.drop_index("ix_conditional_create_res_pk")

    op.drop_table("conditional_create")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_type_updated")

    op.drop_table("resource")
