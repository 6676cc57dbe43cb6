"""subscriptions: the Subscription fields delivery needs, and the notification outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "subscription",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("criteria_type", sa.String(length=64), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("payload", sa.String(length=100), nullable=True),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_subscription_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("res_pk", name=op.f("pk_subscription")),
    )
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscription_status_criteria_type", ["status", "criteria_type"], unique=False
        )

    op.create_table(
        "subscription_outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("subscription_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("delivered", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_pk"],
            ["subscription.res_pk"],
            name=op.f("fk_subscription_outbox_subscription_pk_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_outbox")),
    )
    with op.batch_alter_table("subscription_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscription_outbox_subscription_pk", ["subscription_pk", "state", "id"], unique=False
        )
        batch_op.create_index("ix_subscription_outbox_state_due", ["state", "due"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("subscription_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_outbox_state_due")
        batch_op.drop_index("ix_subscription_outbox_subscription_pk")

    op.drop_table("subscription_outbox")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_status_criteria_type")

    op.drop_table("subscription")
