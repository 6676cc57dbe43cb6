"""search index tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Bytewise order on PostgreSQL so that a string prefix search is an index range scan.
NORM_STRING = sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql")


def _hash64(*parts: str) -> int:
    # Frozen copy of app.fhir.search.hashing.hash64 at this revision (migrations never import the app).
    digest = blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def upgrade() -> None:
    op.create_table(
        "idx_date",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("hash_identity", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_date_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_date")),
    )
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.create_index("ix_idx_date_hash_identity_high", ["hash_identity", "high"], unique=False)
        batch_op.create_index("ix_idx_date_hash_identity_low", ["hash_identity", "low"], unique=False)
        batch_op.create_index("ix_idx_date_res_pk", ["res_pk", "hash_identity"], unique=False)

    op.create_table(
        "idx_number",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("hash_identity", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_number_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_number")),
    )
    with op.batch_alter_table("idx_number", schema=None) as batch_op:
        batch_op.create_index("ix_idx_number_hash_identity_value", ["hash_identity", "value"], unique=False)
        batch_op.create_index("ix_idx_number_res_pk", ["res_pk", "hash_identity"], unique=False)

    op.create_table(
        "idx_quantity",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("hash_identity", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("hash_sys_code", sa.BigInteger(), nullable=False),
        sa.Column("hash_code", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_quantity_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_quantity")),
    )
    with op.batch_alter_table("idx_quantity", schema=None) as batch_op:
        batch_op.create_index("ix_idx_quantity_hash_code_value", ["hash_code", "value"], unique=False)
        batch_op.create_index("ix_idx_quantity_hash_identity_value", ["hash_identity", "value"], unique=False)
        batch_op.create_index("ix_idx_quantity_hash_sys_code_value", ["hash_sys_code", "value"], unique=False)
        batch_op.create_index("ix_idx_quantity_res_pk", ["res_pk", "hash_identity"], unique=False)

    op.create_table(
        "idx_reference",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("hash_identity", sa.BigInteger(), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("hash_target", sa.BigInteger(), nullable=False),
        sa.Column("hash_target_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_reference_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_reference")),
    )
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.create_index("ix_idx_reference_hash_target", ["hash_target"], unique=False)
        batch_op.create_index("ix_idx_reference_hash_target_id", ["hash_target_id"], unique=False)
        batch_op.create_index("ix_idx_reference_res_pk", ["res_pk", "hash_identity"], unique=False)
        batch_op.create_index(
            "ix_idx_reference_target_type_target_id", ["target_type", "target_id"], unique=False
        )

    op.create_table(
        "idx_string",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("hash_identity", sa.BigInteger(), nullable=False),
        sa.Column("value_norm", NORM_STRING, nullable=False),
        sa.Column("value_exact", sa.Text(), nullable=False),
        sa.Column("hash_exact", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_string_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_string")),
    )
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.create_index("ix_idx_string_hash_exact", ["hash_exact"], unique=False)
        batch_op.create_index(
            "ix_idx_string_hash_identity_value_norm", ["hash_identity", "value_norm"], unique=False
        )
        batch_op.create_index("ix_idx_string_res_pk", ["res_pk", "hash_identity"], unique=False)

    op.create_table(
        "idx_uri",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("res_pk", BIG_ID, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("hash_identity", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("hash_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["res_pk"], ["resource.pk"], name=op.f("fk_idx_uri_res_pk_resource"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idx_uri")),
    )
    with op.batch_alter_table("idx_uri", schema=None) as batch_op:
        batch_op.create_index("ix_idx_uri_hash_value", ["hash_value"], unique=False)
        batch_op.create_index("ix_idx_uri_res_pk", ["res_pk", "hash_identity"], unique=False)

    # Existing token rows get hash(type, param) computed here, then the column becomes NOT NULL.
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hash_identity", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    pairs = bind.execute(sa.text("SELECT DISTINCT res_type, param FROM idx_token")).all()
    for res_type, param in pairs:
        bind.execute(
            sa.text("UPDATE idx_token SET hash_identity = :h WHERE res_type = :t AND param = :p"),
            {"h": _hash64(res_type, param), "t": res_type, "p": param},
        )
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.alter_column("hash_identity", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_index("ix_idx_token_res_pk")
        batch_op.create_index("ix_idx_token_res_pk", ["res_pk", "hash_identity"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_token_res_pk")
        batch_op.create_index(batch_op.f("ix_idx_token_res_pk"), ["res_pk"], unique=False)
        batch_op.drop_column("hash_identity")

    with op.batch_alter_table("idx_uri", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_uri_res_pk")
        batch_op.drop_index("ix_idx_uri_hash_value")

    op.drop_table("idx_uri")
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_string_res_pk")
        batch_op.drop_index("ix_idx_string_hash_identity_value_norm")
        batch_op.drop_index("ix_idx_string_hash_exact")

    op.drop_table("idx_string")
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_reference_target_type_target_id")
        batch_op.drop_index("ix_idx_reference_res_pk")
        batch_op.drop_index("ix_idx_reference_hash_target_id")
        batch_op.drop_index("ix_idx_reference_hash_target")

    op.drop_table("idx_reference")
    with op.batch_alter_table("idx_quantity", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_quantity_res_pk")
        batch_op.drop_index("ix_idx_quantity_hash_sys_code_value")
        batch_op.drop_index("ix_idx_quantity_hash_identity_value")
        batch_op.drop_index("ix_idx_quantity_hash_code_value")

    op.drop_table("idx_quantity")
    with op.batch_alter_table("idx_number", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_number_res_pk")
        batch_op.drop_index("ix_idx_number_hash_identity_value")

    op.drop_table("idx_number")
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_date_res_pk")
        batch_op.drop_index("ix_idx_date_hash_identity_low")
        batch_op.drop_index("ix_idx_date_hash_identity_high")

    op.drop_table("idx_date")
