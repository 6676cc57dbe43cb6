"""fewer search-index B-trees: idx_string.hash_exact and the indexes on it, idx_token.hash_sys_value, idx_date.high

Every index is a page more for each commit to write. A Patient's create wrote ~65 pages to SQLite's log,
13 of them for the :exact index of its 13 string rows. An :exact search now enters by the normalised
value (ix_idx_string_hash_identity_value_norm) and compares value_exact. A system|code search enters by
the code (ix_idx_token_hash_value) and filters by hash_sys_value. Date ranges probe by (res_pk,
hash_identity) and enter by (hash_identity, low).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000


def _hash64(*parts: str) -> int:
    # Frozen copy of app.fhir.search.hashing.hash64 at this revision (migrations never import the app).
    digest = blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def upgrade() -> None:
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_string_hash_exact")
        batch_op.drop_column("hash_exact")
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_token_hash_sys_value")
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_date_hash_identity_high")


def downgrade() -> None:
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.create_index("ix_idx_date_hash_identity_high", ["hash_identity", "high"], unique=False)
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.create_index("ix_idx_token_hash_sys_value", ["hash_sys_value"], unique=False)
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hash_exact", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, res_type, param, value_exact FROM idx_string WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            break
        bind.execute(
            sa.text("UPDATE idx_string SET hash_exact = :h WHERE id = :id"),
            [{"h": _hash64(res_type, param, value), "id": row_id} for row_id, res_type, param, value in rows],
        )
        last = rows[-1][0]
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.alter_column("hash_exact", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("ix_idx_string_hash_exact", ["hash_exact"], unique=False)
