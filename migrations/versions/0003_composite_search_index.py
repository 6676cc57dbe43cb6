"""composite search index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NORM_STRING = sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "idx_composite",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("hash_identity", sa.BigInteger(), nullable=False),
        sa.Column("first_sys_value", sa.BigInteger(), nullable=False),
        sa.Column("first_value", sa.BigInteger(), nullable=False),
        sa.Column("second_a", sa.BigInteger(), nullable=True),
        sa.Column("second_b", sa.BigInteger(), nullable=True),
        sa.Column("second_number", sa.Float(precision=53), nullable=True),
        sa.Column("second_low", sa.BigInteger(), nullable=True),
        sa.Column("second_high", sa.BigInteger(), nullable=True),
        sa.Column("second_string", NORM_STRING, nullable=True),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_composite_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_composite")),
    )
    with op.batch_alter_table("idx_composite", schema=None) as batch_op:
        batch_op.create_index("ix_idx_composite_first_sys_value", ["first_sys_value"], unique=False)
        batch_op.create_index("ix_idx_composite_first_value", ["first_value"], unique=False)
        batch_op.create_index("ix_idx_composite_res_pk", ["res_pk", "hash_identity"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idx_composite", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_composite_res_pk")
        batch_op.drop_index("ix_idx_composite_first_value")
        batch_op.drop_index("ix_idx_composite_first_sys_value")

    op.drop_table("idx_composite")
