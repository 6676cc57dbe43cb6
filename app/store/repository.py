"""The storage interface the FHIR engine uses. Everything SQL lives below this line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Select, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from app.store.driver_sql import DriverStatement
from app.store.engine import WRITE_MODE_KEY, Database
from app.store.query import Clause, TypedClauses
from app.store.replica import ReadRouting
from app.store.row_writes import RowDelete, RowInsert, write_rows
from app.store.search_pages import PageQuery, count_statement, counts_all, match_rows, page_statement
from app.store.tables import INDEX_TABLES, conditional_create, idx_reference, resource, resource_version
from app.store.visibility import RowFilter, is_unrestricted, parameters


class DuplicateKey(Exception):
    """A unique key already exists (the row was created by someone else first)."""


class VersionConflict(Exception):
    """The resource changed between reading it and writing the new version."""


@dataclass(frozen=True, slots=True)
class StoredResource:
    pk: int
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    deleted: bool
    content: bytes | None


@dataclass(frozen=True, slots=True)
class CurrentVersion:
    """What a read needs: the stored bytes and the facts behind ETag and Last-Modified."""

    version: int
    last_updated: datetime
    deleted: bool
    content: bytes | None
    pk: int


@dataclass(frozen=True, slots=True)
class SearchRow:
    pk: int
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    content: bytes | None
    keys: tuple[Any, ...]  # sort values and pk, for the keyset cursor
    total: int | None = None  # the number of all matches, when the page's statement counted them


@dataclass(frozen=True, slots=True)
class HistoryRow:
    seq: int
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    method: str
    content: bytes | None
    res_pk: int


_WRITING: ContextVar[bool] = ContextVar("helsebro_writing", default=False)
# Callbacks of the current writer() unit of work, run once it has committed (dropped on rollback).
_ON_COMMIT: ContextVar[list[Callable[[], None]] | None] = ContextVar("helsebro_on_commit", default=None)

# Rows a unit of work writes at its end, in one statement per kind instead of one per write (the audit of
# each write in a transaction of thousands): key -> (how to write them, the rows).
UnitFlush = Callable[[AsyncConnection, list[Any]], Awaitable[object]]


async def _insert_claims(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Conditional-create claims; DuplicateKey if another create holds one of their criteria."""
    try:
        await conn.execute(_INSERT_CLAIM, rows[0] if len(rows) == 1 else rows)
    except IntegrityError as exc:
        raise DuplicateKey(", ".join(str(r["criteria"])[:200] for r in rows[:3])) from exc


# A resource written in a unit of work: (type, id, its token index rows; none once deleted).
Written = tuple[str, str, Sequence[dict[str, Any]]]


@dataclass
class _UnitBatches:
    conn: AsyncConnection
    batches: dict[object, tuple[UnitFlush, list[Any]]]
    written: list[Written] = field(default_factory=list)  # in the order written

    async def flush(self) -> None:
        """Write every batch; a write that batches more (a derived resource's own audit and references)
        is written in the next round, until nothing is left."""
        while any(rows for _write, rows in self.batches.values()):
            for write, rows in list(self.batches.values()):
                if rows:
                    taken = rows[:]
                    rows.clear()  # what arrives while `write` runs waits for the next round
                    await write(self.conn, taken)


_BATCHES: ContextVar[_UnitBatches | None] = ContextVar("helsebro_unit_batches", default=None)
_CLAIMS = object()  # the unit-of-work batch of conditional-create claims
_KEYS_PER_STATEMENT = 500  # (type, id) keys looked up in one statement


@cache
def _live_keys_statement(types: int) -> Select[Any]:
    """Live resources among ids of `types` types: `res_type = :tN AND res_id IN :idsN` for each, which the
    (res_type, res_id) index serves. Built once per number of types: built per call (an IN list of literal
    values per type), SQLAlchemy's expression work was most of the call (24 keys of 6 types on SQLite:
    0.65 -> 0.28 ms). (A row-value IN would be one shape, but SQLite scans the table for it.)"""
    matches = [
        and_(
            resource.c.res_type == bindparam(f"t{n}"),
            resource.c.res_id.in_(bindparam(f"ids{n}", expanding=True)),
        )
        for n in range(types)
    ]
    return select(resource.c.res_type, resource.c.res_id).where(or_(*matches), resource.c.deleted.is_(False))


_CURRENT_COLUMNS = (
    resource.c.pk,
    resource.c.res_type,
    resource.c.res_id,
    resource.c.version,
    resource.c.last_updated,
    resource.c.deleted,
    resource.c.content,
)
_HISTORY_COLUMNS = (
    resource_version.c.seq,
    resource_version.c.res_type,
    resource_version.c.res_id,
    resource_version.c.version,
    resource_version.c.last_updated,
    resource_version.c.method,
    resource_version.c.content,
    resource_version.c.res_pk,
)

# Built once: the read path only binds two values (no per-request statement construction).
_CURRENT_BY_ID = select(*_CURRENT_COLUMNS).where(
    resource.c.res_type == bindparam("res_type"), resource.c.res_id == bindparam("res_id")
)
_CURRENT_BY_ID_FOR_UPDATE = _CURRENT_BY_ID.with_for_update()
# A conditional write's single match, locked: built once, like the by-id reads. A share lock (what a
# conditional create or update that finds the resource unchanged relies on) lets concurrent units that
# match the same resource go on side by side; an update of it then waits for the other holders.
_CURRENT_BY_PK = select(*_CURRENT_COLUMNS).where(resource.c.pk == bindparam("pk"))
_CURRENT_BY_PK_LOCKED = {
    "update": _CURRENT_BY_PK.with_for_update(),
    "share": _CURRENT_BY_PK.with_for_update(read=True),
}
RowLock = Literal["update", "share"]
_INSERT_CLAIM = insert(conditional_create)
_READ_BY_ID = select(
    resource.c.version, resource.c.last_updated, resource.c.deleted, resource.c.content, resource.c.pk
).where(resource.c.res_type == bindparam("res_type"), resource.c.res_id == bindparam("res_id"))
# The same row as a common table expression, for statements that take columns of their own beside it
# (JudgedRead): they select its columns first.
CURRENT_ROW = _READ_BY_ID.cte("current_row")
_VERSION_BY_ID = select(*_HISTORY_COLUMNS).where(
    resource_version.c.res_type == bindparam("res_type"),
    resource_version.c.res_id == bindparam("res_id"),
    resource_version.c.version == bindparam("version"),
)
_INSERT_RESOURCE = insert(resource).returning(resource.c.pk)
_INSERT_VERSION = insert(resource_version)
_NEXT_VERSION = (
    update(resource)
    .where(resource.c.pk == bindparam("b_pk"), resource.c.version == bindparam("b_version"))
    .values(
        version=bindparam("b_new_version"),
        last_updated=bindparam("b_at"),
        deleted=bindparam("b_deleted"),
        content=bindparam("b_content"),
    )
)
_INDEX_TABLE = {t.name: t for t in INDEX_TABLES}


def _version_row(
    pk: int, res_type: str, res_id: str, version: int, at: datetime, method: str, content: bytes | None
) -> dict[str, Any]:
    return {
        "res_pk": pk,
        "res_type": res_type,
        "res_id": res_id,
        "version": version,
        "last_updated": at,
        "method": method,
        "content": content,
    }


def _index_inserts(pk: int, index: Mapping[str, Sequence[dict[str, Any]]] | None) -> list[RowInsert]:
    return [
        RowInsert(_INDEX_TABLE[name], [{**row, "res_pk": pk} for row in rows])
        for name, rows in (index or {}).items()
        if rows
    ]


def _index_replacement(pk: int, index: Mapping[str, Sequence[dict[str, Any]]]) -> list[RowDelete | RowInsert]:
    """Remove every index row of `pk` (it may have rows in any table), then insert the new ones."""
    deletes: list[RowDelete | RowInsert] = [RowDelete(t, "res_pk", pk) for t in INDEX_TABLES]
    return deletes + _index_inserts(pk, index)


class JudgedRead(Protocol):
    """A read that also judges the row it reads in the same statement (an access policy's decision), so
    that no second statement is needed: `statement` selects CURRENT_ROW's columns first and its own after
    them (one or more rows per resource, none if it does not exist), with `params` besides "res_type" and
    "res_id"; `judge` turns the rows into what the caller of read_current_judged gets back. The statement
    runs as driver SQL (driver_sql.py): it is on every secured read's path."""

    @property
    def statement(self) -> DriverStatement: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    def judge(self, rows: Sequence[Sequence[Any]]) -> object: ...


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- units of work -------------------------------------------------------------------------------
    def reader(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for reads, used as `async with repo.reader() as conn` (no transaction held): on
        the replica when one is configured and the read may be served there (app/store/replica.py)."""
        if self.db.routing is None:
            return self.db.read_engine.connect()
        return self._routed_reader(self.db.routing)

    @staticmethod
    @asynccontextmanager
    async def _routed_reader(routing: ReadRouting) -> AsyncIterator[AsyncConnection]:
        engine = await routing.engine_for_read()
        async with engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def reading(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        """`conn` when the caller has one (a transaction's GET entries see its own writes), else a
        reader connection of its own for the block."""
        if conn is not None:
            yield conn
            return
        async with self.reader() as own:
            yield own

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends normally, rolled back on any exception.

        A unique-key violation aborts the whole unit of work (no savepoints on the hot path); callers that
        lose a race retry the unit from the start.
        """
        token = _WRITING.set(True)
        callbacks: list[Callable[[], None]] = []
        commit_token = _ON_COMMIT.set(callbacks)
        try:
            async with self.db.write_slot(), self.db.write_engine.begin() as conn:
                unit = _UnitBatches(conn, {})
                batches_token = _BATCHES.set(unit)
                try:
                    yield conn
                    await unit.flush()  # what was batched to the end of the unit, before it commits
                finally:
                    _BATCHES.reset(batches_token)
                    # A task started during the unit keeps a copy of this context, and with it the unit:
                    # emptied, it holds no rows (a bundle's ~2,000 audit events had stayed alive in one,
                    # and every full garbage collection walked them).
                    unit.batches.clear()
                    unit.written.clear()
        finally:
            _ON_COMMIT.reset(commit_token)
            _WRITING.reset(token)
        for callback in callbacks:
            callback()
        if self.db.routing is not None:
            await self.db.routing.wrote()  # the caller's next reads wait for the replica to have it

    @staticmethod
    def after_commit(callback: Callable[[], None]) -> None:
        """Run `callback` once the current writer() unit of work has committed; never if it rolls back.
        Outside a unit of work it runs at once. For in-memory caches and wake-ups, not for database work."""
        callbacks = _ON_COMMIT.get()
        if callbacks is None:
            callback()
        else:
            callbacks.append(callback)

    @staticmethod
    def batch_in_unit(conn: AsyncConnection, key: object, write: UnitFlush, rows: Sequence[Any]) -> bool:
        """Add rows to write at the end of `conn`'s unit of work, before it commits, with one `write` call
        for all rows of `key` (rolled back with the unit). False when `conn` is not the current unit's:
        the caller writes them itself."""
        unit = _BATCHES.get()
        if unit is None or unit.conn is not conn:
            return False
        found = unit.batches.get(key)
        if found is None:
            found = unit.batches[key] = (write, [])
        found[1].extend(rows)
        return True

    @staticmethod
    def unit_writes(conn: AsyncConnection) -> list[Written] | None:
        """The resources written so far in `conn`'s unit of work, in order (hooks' writes too); None when
        `conn` is not the current unit's. A transaction tells by it whether a match it made still holds."""
        unit = _BATCHES.get()
        return unit.written if unit is not None and unit.conn is conn else None

    @staticmethod
    def _note(
        conn: AsyncConnection,
        res_type: str,
        res_id: str,
        index: Mapping[str, Sequence[dict[str, Any]]] | None,
    ) -> None:
        written = Repository.unit_writes(conn)
        if written is not None:
            written.append((res_type, res_id, (index or {}).get("idx_token", ())))

    @staticmethod
    def writing() -> bool:
        """Whether the current task is inside a writer() unit of work. Hooks use it to put their rows into
        that unit instead of opening another writer (which, on SQLite, would wait for this one forever)."""
        return _WRITING.get()

    @staticmethod
    def is_write_unit(conn: AsyncConnection) -> bool:
        """Whether `conn` is a writer()'s transaction (hooks that add rows use it instead of their own)."""
        return bool(
            conn.sync_connection
            and conn.sync_connection.get_execution_options().get(WRITE_MODE_KEY) == "write"
        )

    # -- reads ---------------------------------------------------------------------------------------
    async def current(
        self, conn: AsyncConnection, res_type: str, res_id: str, for_update: bool = False
    ) -> StoredResource | None:
        """The current version. for_update locks the row (PostgreSQL) so that concurrent writers of one
        resource queue up instead of failing; SQLite writers are already serialised by BEGIN IMMEDIATE."""
        query = _CURRENT_BY_ID_FOR_UPDATE if for_update else _CURRENT_BY_ID
        row = (await conn.execute(query, {"res_type": res_type, "res_id": res_id})).first()
        return StoredResource(*row) if row else None

    async def read_current(self, conn: AsyncConnection, res_type: str, res_id: str) -> CurrentVersion | None:
        """The read path's lean form of current(): only the columns a read response needs."""
        row = (await conn.execute(_READ_BY_ID, {"res_type": res_type, "res_id": res_id})).first()
        return CurrentVersion(*row) if row else None

    async def read_current_judged(
        self, conn: AsyncConnection, res_type: str, res_id: str, judged: JudgedRead
    ) -> tuple[CurrentVersion, object] | None:
        """read_current() and the judgement of `judged` on the row, in one statement."""
        params = {**judged.params, "res_type": res_type, "res_id": res_id}
        rows = await judged.statement.all(conn, params)
        if not rows:
            return None
        return CurrentVersion(*rows[0][:5]), judged.judge(rows)

    async def current_by_pks(
        self,
        conn: AsyncConnection,
        pks: Sequence[int],
        visible: RowFilter,
        lock: RowLock | None = None,
    ) -> list[StoredResource]:
        """The current versions of `pks` that `visible` lets through, locked (PostgreSQL) with `lock`."""
        if not pks:
            return []
        if lock is not None and len(pks) == 1 and is_unrestricted(visible):
            row = (await conn.execute(_CURRENT_BY_PK_LOCKED[lock], {"pk": pks[0]})).first()
            return [] if row is None else [StoredResource(*row)]
        query = select(*_CURRENT_COLUMNS).where(resource.c.pk.in_(pks))
        if not is_unrestricted(visible):
            query = query.where(visible.condition(resource))
        if lock is not None:
            query = query.with_for_update(read=lock == "share")
        return [StoredResource(*row) for row in (await conn.execute(query, parameters(visible))).all()]

    async def version(
        self, conn: AsyncConnection, res_type: str, res_id: str, version: int
    ) -> HistoryRow | None:
        params = {"res_type": res_type, "res_id": res_id, "version": version}
        row = (await conn.execute(_VERSION_BY_ID, params)).first()
        return HistoryRow(*row) if row else None

    async def find(
        self,
        conn: AsyncConnection,
        res_type: str,
        clauses: Sequence[Clause],
        limit: int,
        visible: RowFilter,
        inner: RowFilter | None = None,
    ) -> list[int]:
        """Primary keys of live resources of a type matching every clause (AND), in pk order, among those
        `visible`; chains and _has look only into what `inner` (default: `visible`) lets through."""
        query = PageQuery((TypedClauses(res_type, tuple(clauses)),), (), None, False, limit, visible, inner)
        return [row[0] for row in await match_rows(conn, query)]

    async def search_page(self, conn: AsyncConnection, query: PageQuery) -> list[SearchRow]:
        rows = (await conn.execute(*page_statement(query))).all()
        if counts_all(query):
            return [SearchRow(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6:-1]), r[-1]) for r in rows]
        return [SearchRow(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6:])) for r in rows]

    async def search_count(
        self,
        conn: AsyncConnection,
        typed: Sequence[TypedClauses],
        visible: RowFilter,
        inner: RowFilter | None = None,
    ) -> int:
        """How many rows `visible` lets through match; chains and _has look into what `inner` (default:
        `visible`) lets through."""
        return int((await conn.execute(*count_statement(typed, visible, inner))).scalar_one())

    async def reference_targets(
        self,
        conn: AsyncConnection,
        pks: Sequence[int],
        identities: Sequence[int],
        target_types: Sequence[str],
    ) -> list[tuple[str, str]]:
        """(type, id) of what the resources `pks` reference through the given parameters (for _include)."""
        if not pks or not identities:
            return []
        t = idx_reference
        where = [t.c.res_pk.in_(pks), t.c.hash_identity.in_(identities), t.c.target_id.is_not(None)]
        if target_types:
            where.append(t.c.target_type.in_(target_types))
        rows = (await conn.execute(select(t.c.target_type, t.c.target_id).where(*where).distinct())).all()
        return [(r[0], r[1]) for r in rows]

    async def referencing(
        self,
        conn: AsyncConnection,
        identities: Sequence[int],
        targets: Sequence[tuple[str, str]],
        limit: int,
        visible: RowFilter,
    ) -> list[int]:
        """pks of live resources that reference any of `targets` through the given parameters (_revinclude)."""
        if not targets or not identities:
            return []
        t = idx_reference
        by_type: dict[str, list[str]] = {}
        for target_type, target_id in targets:
            by_type.setdefault(target_type, []).append(target_id)
        matches = [and_(t.c.target_type == k, t.c.target_id.in_(v)) for k, v in by_type.items()]
        query = (
            select(t.c.res_pk)
            .join(resource, resource.c.pk == t.c.res_pk)
            .where(
                t.c.hash_identity.in_(identities),
                or_(*matches),
                resource.c.deleted.is_(False),
                visible.condition(resource),
            )
            .distinct()
            .limit(limit)
        )
        return list((await conn.execute(query, parameters(visible))).scalars())

    async def current_by_keys(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]], visible: RowFilter
    ) -> list[StoredResource]:
        """Live resources by (type, id)."""
        if not keys:
            return []
        by_type: dict[str, list[str]] = {}
        for res_type, res_id in keys:
            by_type.setdefault(res_type, []).append(res_id)
        matches = [and_(resource.c.res_type == k, resource.c.res_id.in_(v)) for k, v in by_type.items()]
        query = select(*_CURRENT_COLUMNS).where(or_(*matches), resource.c.deleted.is_(False))
        if not is_unrestricted(visible):
            query = query.where(visible.condition(resource))
        return [StoredResource(*row) for row in (await conn.execute(query, parameters(visible))).all()]

    async def live_keys(self, conn: AsyncConnection, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of the (type, id) keys name a live resource, whoever may see it (referential integrity)."""
        found: set[tuple[str, str]] = set()
        for start in range(0, len(keys), _KEYS_PER_STATEMENT):
            by_type: dict[str, list[str]] = {}
            for res_type, res_id in keys[start : start + _KEYS_PER_STATEMENT]:
                by_type.setdefault(res_type, []).append(res_id)
            params: dict[str, Any] = {}
            for n, (res_type, ids) in enumerate(by_type.items()):
                params[f"t{n}"], params[f"ids{n}"] = res_type, ids
            rows = (await conn.execute(_live_keys_statement(len(by_type)), params)).all()
            found.update((t, i) for t, i in rows)
        return found

    async def live_batch(
        self, conn: AsyncConnection, res_types: Sequence[str] | None, after_pk: int, limit: int
    ) -> list[StoredResource]:
        """Live resources in pk order after `after_pk` (for reindexing in batches)."""
        query = select(*_CURRENT_COLUMNS).where(resource.c.pk > after_pk, resource.c.deleted.is_(False))
        if res_types is not None:
            query = query.where(resource.c.res_type.in_(res_types))
        rows = (await conn.execute(query.order_by(resource.c.pk).limit(limit))).all()
        return [StoredResource(*row) for row in rows]

    async def count_live(self, conn: AsyncConnection, res_types: Sequence[str] | None) -> int:
        """How many live resources there are (of the given types): the extent of a reindex job."""
        query = select(func.count()).select_from(resource).where(resource.c.deleted.is_(False))
        if res_types is not None:
            query = query.where(resource.c.res_type.in_(res_types))
        return int((await conn.execute(query)).scalar_one())

    async def history(
        self,
        conn: AsyncConnection,
        res_type: str | None,
        res_id: str | None,
        since: datetime | None,
        before_seq: int | None,
        limit: int,
        visible: RowFilter,
        at: tuple[datetime, datetime] | None = None,
    ) -> tuple[list[HistoryRow], int]:
        """Newest first; keyset paging on the global sequence keeps pages stable while data changes.
        `visible` is decided on the resource (its current version), for every version of it. `at` keeps
        the versions that were current at some moment of that (inclusive) period: written by its end,
        and not yet replaced by its start."""
        conditions: list[ColumnElement[bool]] = []
        if not is_unrestricted(visible):
            owner = resource.alias("owner")
            conditions.append(
                select(owner.c.pk)
                .where(owner.c.pk == resource_version.c.res_pk, visible.condition(owner))
                .exists()
            )
        if res_type is not None:
            conditions.append(resource_version.c.res_type == res_type)
        if res_id is not None:
            conditions.append(resource_version.c.res_id == res_id)
        if since is not None:
            conditions.append(resource_version.c.last_updated >= since)
        if at is not None:
            start, end = at
            later = resource_version.alias("later")
            replaced_before = (
                select(later.c.seq)
                .where(
                    later.c.res_pk == resource_version.c.res_pk,
                    later.c.version == resource_version.c.version + 1,
                    later.c.last_updated <= start,
                )
                .exists()
            )
            conditions += [resource_version.c.last_updated <= end, ~replaced_before]
        values = parameters(visible)
        total = (
            await conn.execute(select(func.count()).select_from(resource_version).where(*conditions), values)
        ).scalar_one()
        if before_seq is not None:
            conditions.append(resource_version.c.seq < before_seq)
        query = (
            select(*_HISTORY_COLUMNS).where(*conditions).order_by(resource_version.c.seq.desc()).limit(limit)
        )
        rows = [HistoryRow(*row) for row in (await conn.execute(query, values)).all()]
        return rows, int(total)

    # -- writes --------------------------------------------------------------------------------------
    async def insert(
        self,
        conn: AsyncConnection,
        res_type: str,
        res_id: str,
        content: bytes,
        at: datetime,
        method: str,
        index: Mapping[str, Sequence[dict[str, Any]]] | None = None,
    ) -> StoredResource:
        """Insert version 1 of a new resource with its search index rows (table name -> rows);
        DuplicateKey if the id is taken (also when deleted)."""
        try:
            values = {
                "res_type": res_type,
                "res_id": res_id,
                "version": 1,
                "last_updated": at,
                "deleted": False,
                "content": content,
            }
            pk = (await conn.execute(_INSERT_RESOURCE, values)).scalar_one()
        except IntegrityError as exc:
            raise DuplicateKey(f"{res_type}/{res_id} exists") from exc
        version = _version_row(pk, res_type, res_id, 1, at, method, content)
        await self._write_version(
            conn, version, [RowInsert(resource_version, [version]), *_index_inserts(pk, index)]
        )
        self._note(conn, res_type, res_id, index)
        return StoredResource(pk, res_type, res_id, 1, at, False, content)

    async def insert_many(
        self, conn: AsyncConnection, items: Sequence[tuple[str, str, bytes]], at: datetime, method: str
    ) -> list[StoredResource]:
        """Version 1 of many new resources (type, id, content) in three statements, not three per resource."""
        if not items:
            return []
        values = [
            {"res_type": t, "res_id": i, "version": 1, "last_updated": at, "deleted": False, "content": c}
            for t, i, c in items
        ]
        try:
            result = await conn.execute(
                insert(resource).returning(resource.c.pk, sort_by_parameter_order=True), values
            )
        except IntegrityError as exc:
            raise DuplicateKey("one of the new resources exists") from exc
        pks = list(result.scalars())
        versions = [
            {
                "res_pk": pk,
                "res_type": t,
                "res_id": i,
                "version": 1,
                "last_updated": at,
                "method": method,
                "content": c,
            }
            for pk, (t, i, c) in zip(pks, items, strict=True)
        ]
        await conn.execute(_INSERT_VERSION, versions)
        return [StoredResource(pk, t, i, 1, at, False, c) for pk, (t, i, c) in zip(pks, items, strict=True)]

    async def insert_index_many(
        self,
        conn: AsyncConnection,
        per_resource: Sequence[tuple[StoredResource, Mapping[str, Sequence[dict[str, Any]]]]],
    ) -> None:
        """Index rows of many new resources: every table's rows in one trip."""
        by_table: dict[str, list[dict[str, Any]]] = {}
        for stored, tables in per_resource:
            self._note(conn, stored.res_type, stored.res_id, tables)
            for name, rows in tables.items():
                by_table.setdefault(name, []).extend({**row, "res_pk": stored.pk} for row in rows)
        await write_rows(conn, [RowInsert(_INDEX_TABLE[name], rows) for name, rows in by_table.items()])

    async def replace(
        self,
        conn: AsyncConnection,
        current: StoredResource,
        content: bytes | None,
        at: datetime,
        method: str,
        index: Mapping[str, Sequence[dict[str, Any]]] | None = None,
    ) -> StoredResource:
        """Write the next version (content None = delete) and, given `index` (table name -> rows, empty for
        a delete), replace its search index rows. VersionConflict if someone else got there first."""
        new_version = current.version + 1
        params = {
            "b_pk": current.pk,
            "b_version": current.version,
            "b_new_version": new_version,
            "b_at": at,
            "b_deleted": content is None,
            "b_content": content,
        }
        result = await conn.execute(_NEXT_VERSION, params)
        if result.rowcount != 1:
            raise VersionConflict(f"{current.res_type}/{current.res_id}")
        version = _version_row(current.pk, current.res_type, current.res_id, new_version, at, method, content)
        steps: list[RowDelete | RowInsert] = [RowInsert(resource_version, [version])]
        if index is not None:
            steps += _index_replacement(current.pk, index)
        await self._write_version(conn, version, steps)
        self._note(conn, current.res_type, current.res_id, index)
        return StoredResource(
            current.pk, current.res_type, current.res_id, new_version, at, content is None, content
        )

    @staticmethod
    async def _write_version(
        conn: AsyncConnection, version: Mapping[str, Any], steps: Sequence[RowDelete | RowInsert]
    ) -> None:
        """The version row and what goes with it in one trip; VersionConflict if the version exists."""
        try:
            await write_rows(conn, steps)
        except IntegrityError as exc:
            where = f"{version['res_type']}/{version['res_id']}/_history/{version['version']}"
            raise VersionConflict(where) from exc

    async def replace_index(
        self,
        conn: AsyncConnection,
        pk: int,
        rows: Mapping[str, Sequence[dict[str, Any]]],
    ) -> None:
        """Swap a resource's search index rows (table name -> rows), in one trip."""
        await write_rows(conn, _index_replacement(pk, rows))

    # -- conditional create keys ---------------------------------------------------------------------
    async def claim_conditional(
        self, conn: AsyncConnection, criteria_hash: int, res_type: str, criteria: str, pk: int, at: datetime
    ) -> None:
        """Record that `criteria` created resource `pk`; DuplicateKey if another create holds it (in a unit
        of work: when the unit ends, all of its claims in one statement, before it commits)."""
        row = {"criteria_hash": criteria_hash, "res_type": res_type, "criteria": criteria, "res_pk": pk}
        if self.batch_in_unit(conn, _CLAIMS, _insert_claims, [{**row, "created": at}]):
            return
        await _insert_claims(conn, [{**row, "created": at}])

    async def claim_conditional_many(
        self, conn: AsyncConnection, claims: Sequence[tuple[int, str, str, int]], at: datetime
    ) -> None:
        """claim_conditional for many (criteria hash, type, criteria, pk) at once."""
        if not claims:
            return
        rows = [
            {"criteria_hash": h, "res_type": t, "criteria": c, "res_pk": pk, "created": at}
            for h, t, c, pk in claims
        ]
        await _insert_claims(conn, rows)

    async def release_conditional(self, conn: AsyncConnection, criteria_hash: int) -> None:
        await conn.execute(
            delete(conditional_create).where(conditional_create.c.criteria_hash == criteria_hash)
        )

    async def release_conditionals_of(self, conn: AsyncConnection, pk: int) -> None:
        await conn.execute(delete(conditional_create).where(conditional_create.c.res_pk == pk))


Item = TypeVar("Item")


async def at_unit_end(
    conn: AsyncConnection,
    key: str,
    run: Callable[[AsyncConnection, list[Item]], Awaitable[None]],
    items: list[Item],
) -> None:
    """Run a write hook's `run` for `items` once at the end of `conn`'s unit of work, with every item of
    `key` the unit gathered (a transaction may write what the hook needs, such as a message's recipient,
    after the resource that calls for it), or at once when `conn` is not a unit of work's."""
    if not Repository.batch_in_unit(conn, key, run, items):
        await run(conn, items)
