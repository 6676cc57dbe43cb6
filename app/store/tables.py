"""Table definitions: current resources, full version history, search index rows, conditional-create keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both databases (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


resource = Table(
    "resource",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", UtcDateTime, nullable=False),
    Column("deleted", Boolean, nullable=False),
    # Canonical JSON of the current version (NULL once deleted): served as stored, never re-parsed.
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
    Index("ix_resource_type_updated", "res_type", "last_updated"),
)

resource_version = Table(
    "resource_version",
    metadata,
    # Global, monotonic order of all writes: history paging is a keyset on it.
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("res_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", UtcDateTime, nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, PATCH or DELETE
    Column("content", LargeBinary, nullable=True),
    # Optimistic concurrency: two writers can never both produce version n of one resource.
    UniqueConstraint("res_type", "res_id", "version", name="uq_resource_version_type_id_version"),
    Index("ix_resource_version_updated", "last_updated"),
    Index("ix_resource_version_type_seq", "res_type", "seq"),
)

# Token search index (HAPI-style hashes): a search is an equality lookup on an indexed 64-bit integer.
idx_token = Table(
    "idx_token",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("res_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("param", String(100), nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("hash_value", BigInteger, nullable=False),  # (type, param, code)
    Column("hash_sys_value", BigInteger, nullable=False),  # (type, param, system, code)
    Column("hash_sys", BigInteger, nullable=False),  # (type, param, system)
    Index("ix_idx_token_res_pk", "res_pk"),
    Index("ix_idx_token_hash_value", "hash_value"),
    Index("ix_idx_token_hash_sys_value", "hash_sys_value"),
    Index("ix_idx_token_hash_sys", "hash_sys"),
)

# One row per conditional-create criteria that produced a resource. The primary key makes two concurrent
# identical conditional creates collide in the database instead of both inserting.
conditional_create = Table(
    "conditional_create",
    metadata,
    Column("criteria_hash", BigInteger, primary_key=True, autoincrement=False),
    Column("res_type", String(64), nullable=False),
    Column("criteria", Text, nullable=False),
    Column("res_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Index("ix_conditional_create_res_pk", "res_pk"),
)
