"""Table definitions: current resources, full version history, search index rows, conditional-create keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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

# Search index tables (HAPI-style): one row per indexed value, written in the resource's transaction.
# hash_identity = hash(type, param) finds every row of one parameter (for :missing, sorting, includes);
# the other hashes turn most searches into equality lookups on an indexed 64-bit integer.


def _index_table(name: str, *columns: Column[Any], indexes: tuple[tuple[str, ...], ...]) -> Table:
    return Table(
        name,
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("res_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        Column("hash_identity", BigInteger, nullable=False),
        *columns,
        Index(f"ix_{name}_res_pk", "res_pk", "hash_identity"),
        *(Index(f"ix_{name}_{'_'.join(cols)}", *cols) for cols in indexes),
    )


# Strings compare bytewise in the index ("C" collation on PostgreSQL), so a prefix search is a range scan.
NormString = String(200).with_variant(String(200, collation="C"), "postgresql")

idx_token = _index_table(
    "idx_token",
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("hash_value", BigInteger, nullable=False),  # (type, param, code)
    Column("hash_sys_value", BigInteger, nullable=False),  # (type, param, system, code)
    Column("hash_sys", BigInteger, nullable=False),  # (type, param, system)
    # No index on hash_sys_value: system|code searches use hash_value's and filter by system. Each index
    # is a page more for every commit to write (migration 0009).
    indexes=(("hash_value",), ("hash_sys",)),
)
idx_string = _index_table(
    "idx_string",
    Column("value_norm", NormString, nullable=False),
    Column("value_exact", Text, nullable=False),  # :exact finds its normalised form, then compares this
    indexes=(("hash_identity", "value_norm"),),
)
idx_date = _index_table(
    "idx_date",
    # Inclusive bounds in microseconds since the epoch (UTC); open ends use very large sentinels.
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    # Range clauses probe by (res_pk, hash_identity); a search on dates alone enters by parameter here.
    indexes=(("hash_identity", "low"),),
)
idx_number = _index_table(
    "idx_number",
    Column("value", Float(53), nullable=False),
    indexes=(("hash_identity", "value"),),
)
idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Float(53), nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("unit", Text, nullable=True),
    Column("hash_sys_code", BigInteger, nullable=False),  # (type, param, system, code)
    Column("hash_code", BigInteger, nullable=False),  # (type, param, code or unit)
    indexes=(("hash_identity", "value"), ("hash_sys_code", "value"), ("hash_code", "value")),
)
idx_uri = _index_table(
    "idx_uri",
    Column("value", Text, nullable=False),
    Column("hash_value", BigInteger, nullable=False),  # (type, param, uri)
    indexes=(("hash_value",),),
)
idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", Text, nullable=True),  # absolute or logical URL when the target is not local
    Column("hash_target", BigInteger, nullable=False),  # (type, param, "Type/id" or url)
    Column("hash_target_id", BigInteger, nullable=False),  # (type, param, id)
    indexes=(("hash_target",), ("hash_target_id",), ("target_type", "target_id")),
)

# Composite parameters (code-value-quantity ...): one row per root element and combination of component
# values, so that both components are matched on the same element (the same Observation.component).
idx_composite = _index_table(
    "idx_composite",
    Column("first_sys_value", BigInteger, nullable=False),  # first component: token system|code, or reference
    Column("first_value", BigInteger, nullable=False),  # first component: token code only
    Column("second_a", BigInteger, nullable=True),  # token system|code; quantity system|code
    Column("second_b", BigInteger, nullable=True),  # token code; quantity code or unit
    Column("second_number", Float(53), nullable=True),  # quantity value
    Column("second_low", BigInteger, nullable=True),  # date range
    Column("second_high", BigInteger, nullable=True),
    Column("second_string", NormString, nullable=True),
    indexes=(("first_sys_value",), ("first_value",)),
)

INDEX_TABLES = (
    idx_token,
    idx_string,
    idx_date,
    idx_number,
    idx_quantity,
    idx_uri,
    idx_reference,
    idx_composite,
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

# Subscriptions (R4 rest-hook): the fields of every Subscription resource that delivery needs, kept by the
# engine's write hook in the resource's own transaction (derived data, like the search index).
subscription = Table(
    "subscription",
    metadata,
    Column("res_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), primary_key=True),
    Column("res_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # requested, active, error, off
    Column("criteria_type", String(64), nullable=False),
    Column("criteria", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("payload", String(100), nullable=True),  # MIME type; NULL sends an empty ping
    Column("headers", Text, nullable=False),  # JSON array of "Name: value" lines
    # Who registered it, as JSON (app/security/stored_principals.py): delivery reads as that principal.
    Column("principal", Text, nullable=True),
    Column("updated", UtcDateTime, nullable=False),
    Index("ix_subscription_status_criteria_type", "status", "criteria_type"),
)

# The transactional outbox: one row per (subscription, resource version) to notify, inserted in the
# write's own transaction. `id` is the write order; only the oldest pending row of a subscription is ever
# claimed, so each subscription is notified in write order.
subscription_outbox = Table(
    "subscription_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_pk", BigId, ForeignKey("subscription.res_pk", ondelete="CASCADE"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", String(12), nullable=False),  # pending, delivered, withheld, failed
    Column("created", UtcDateTime, nullable=False),
    # When the row may be claimed next: the retry time, or the end of a delivering process's lease.
    Column("due", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claim", String(32), nullable=True),  # token of the process holding the lease
    Column("delivered", UtcDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),  # HTTP status of the last attempt
    Column("last_error", String(200), nullable=True),  # short reason, never content
    Index("ix_subscription_outbox_subscription_pk", "subscription_pk", "state", "id"),
    Index("ix_subscription_outbox_state_due", "state", "due"),
)

# Asynchronous jobs (FHIR async pattern: $reindex, $export). A job runs as the principal that started
# it, on one process at a time: `lease` names the process holding it until `lease_until`, and a job whose
# holder died is taken over when the lease ends. `state` is where a resumed run goes on from, written in
# the same unit of work as the step's output, so a restart neither repeats nor loses a file.
job = Table(
    "job",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),  # reindex, export
    Column("status", String(12), nullable=False),  # queued, running, completed, failed, cancelled
    Column("request", Text, nullable=False),  # the kick-off request's URL (the manifest's "request")
    Column("params", Text, nullable=False),  # JSON: the kind's parameters, fixed at kick-off
    Column("principal", Text, nullable=True),  # who started it (app/security/stored_principals.py)
    Column("state", Text, nullable=False),  # JSON: the kind's progress state
    Column("progress", String(200), nullable=True),  # for X-Progress; counts only, never content
    Column("result", Text, nullable=True),  # JSON: what the status request answers once finished
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("lease", String(32), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    Index("ix_job_status_lease_until", "status", "lease_until"),
)

# A job's output files (bulk export NDJSON), kept in the database so every API process can serve them.
job_output = Table(
    "job_output",
    metadata,
    Column("job_id", String(36), ForeignKey("job.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("res_type", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
)
