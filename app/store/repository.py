"""The storage interface the FHIR engine uses. Everything SQL lives below this line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from app.store.engine import Database
from app.store.tables import conditional_create, idx_token, resource, resource_version


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


@dataclass(frozen=True, slots=True)
class HistoryRow:
    seq: int
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    method: str
    content: bytes | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    param: str
    system: str | None
    code: str | None
    hash_value: int
    hash_sys_value: int
    hash_sys: int


@dataclass(frozen=True, slots=True)
class IdIn:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenHashIn:
    column: Literal["hash_value", "hash_sys_value", "hash_sys"]
    hashes: tuple[int, ...]


Clause = IdIn | TokenHashIn

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
)

# Built once: the read path only binds two values (no per-request statement construction).
_CURRENT_BY_ID = select(*_CURRENT_COLUMNS).where(
    resource.c.res_type == bindparam("res_type"), resource.c.res_id == bindparam("res_id")
)
_CURRENT_BY_ID_FOR_UPDATE = _CURRENT_BY_ID.with_for_update()
_READ_BY_ID = select(
    resource.c.version, resource.c.last_updated, resource.c.deleted, resource.c.content
).where(resource.c.res_type == bindparam("res_type"), resource.c.res_id == bindparam("res_id"))
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
_DELETE_TOKENS = delete(idx_token).where(idx_token.c.res_pk == bindparam("res_pk"))
_INSERT_TOKENS = insert(idx_token)


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- units of work -------------------------------------------------------------------------------
    def reader(self) -> AsyncConnection:
        """A connection for reads, used as `async with repo.reader() as conn` (no transaction held)."""
        return self.db.read_engine.connect()

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends normally, rolled back on any exception.

        A unique-key violation aborts the whole unit of work (no savepoints on the hot path); callers that
        lose a race retry the unit from the start.
        """
        async with self.db.write_slot(), self.db.write_engine.begin() as conn:
            yield conn

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

    async def current_by_pks(
        self, conn: AsyncConnection, pks: Sequence[int], for_update: bool = False
    ) -> list[StoredResource]:
        if not pks:
            return []
        query = select(*_CURRENT_COLUMNS).where(resource.c.pk.in_(pks))
        if for_update:
            query = query.with_for_update()
        return [StoredResource(*row) for row in (await conn.execute(query)).all()]

    async def version(
        self, conn: AsyncConnection, res_type: str, res_id: str, version: int
    ) -> HistoryRow | None:
        params = {"res_type": res_type, "res_id": res_id, "version": version}
        row = (await conn.execute(_VERSION_BY_ID, params)).first()
        return HistoryRow(*row) if row else None

    async def find(
        self, conn: AsyncConnection, res_type: str, clauses: Sequence[Clause], limit: int
    ) -> list[int]:
        """Primary keys of live resources of a type matching every clause (AND)."""
        conditions: list[ColumnElement[bool]] = [
            resource.c.res_type == res_type,
            resource.c.deleted.is_(False),
        ]
        for clause in clauses:
            if isinstance(clause, IdIn):
                conditions.append(resource.c.res_id.in_(clause.ids))
            else:
                column = idx_token.c[clause.column]
                conditions.append(
                    exists().where(and_(idx_token.c.res_pk == resource.c.pk, column.in_(clause.hashes)))
                )
        query = select(resource.c.pk).where(*conditions).order_by(resource.c.pk).limit(limit)
        return list((await conn.execute(query)).scalars())

    async def history(
        self,
        conn: AsyncConnection,
        res_type: str | None,
        res_id: str | None,
        since: datetime | None,
        before_seq: int | None,
        limit: int,
    ) -> tuple[list[HistoryRow], int]:
        """Newest first; keyset paging on the global sequence keeps pages stable while data changes."""
        conditions: list[ColumnElement[bool]] = []
        if res_type is not None:
            conditions.append(resource_version.c.res_type == res_type)
        if res_id is not None:
            conditions.append(resource_version.c.res_id == res_id)
        if since is not None:
            conditions.append(resource_version.c.last_updated >= since)
        total = (
            await conn.execute(select(func.count()).select_from(resource_version).where(*conditions))
        ).scalar_one()
        if before_seq is not None:
            conditions.append(resource_version.c.seq < before_seq)
        query = (
            select(*_HISTORY_COLUMNS).where(*conditions).order_by(resource_version.c.seq.desc()).limit(limit)
        )
        rows = [HistoryRow(*row) for row in (await conn.execute(query)).all()]
        return rows, int(total)

    # -- writes --------------------------------------------------------------------------------------
    async def insert(
        self, conn: AsyncConnection, res_type: str, res_id: str, content: bytes, at: datetime, method: str
    ) -> StoredResource:
        """Insert version 1 of a new resource; DuplicateKey if the id is taken (also when deleted)."""
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
        await self._insert_version(conn, pk, res_type, res_id, 1, at, method, content)
        return StoredResource(pk, res_type, res_id, 1, at, False, content)

    async def replace(
        self,
        conn: AsyncConnection,
        current: StoredResource,
        content: bytes | None,
        at: datetime,
        method: str,
    ) -> StoredResource:
        """Write the next version (content None = delete). VersionConflict if someone else got there first."""
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
        await self._insert_version(
            conn, current.pk, current.res_type, current.res_id, new_version, at, method, content
        )
        return StoredResource(
            current.pk, current.res_type, current.res_id, new_version, at, content is None, content
        )

    async def _insert_version(
        self,
        conn: AsyncConnection,
        pk: int,
        res_type: str,
        res_id: str,
        version: int,
        at: datetime,
        method: str,
        content: bytes | None,
    ) -> None:
        try:
            values = {
                "res_pk": pk,
                "res_type": res_type,
                "res_id": res_id,
                "version": version,
                "last_updated": at,
                "method": method,
                "content": content,
            }
            await conn.execute(_INSERT_VERSION, values)
        except IntegrityError as exc:
            raise VersionConflict(f"{res_type}/{res_id}/_history/{version}") from exc

    async def replace_tokens(
        self, conn: AsyncConnection, pk: int, res_type: str, rows: Sequence[TokenRow], fresh: bool = False
    ) -> None:
        """Swap a resource's token rows for `rows` (fresh: a new resource, nothing to remove first)."""
        if not fresh:
            await conn.execute(_DELETE_TOKENS, {"res_pk": pk})
        if rows:
            await conn.execute(
                _INSERT_TOKENS,
                [
                    {
                        "res_pk": pk,
                        "res_type": res_type,
                        "param": row.param,
                        "system": row.system,
                        "code": row.code,
                        "hash_value": row.hash_value,
                        "hash_sys_value": row.hash_sys_value,
                        "hash_sys": row.hash_sys,
                    }
                    for row in rows
                ],
            )

    # -- conditional create keys ---------------------------------------------------------------------
    async def claim_conditional(
        self, conn: AsyncConnection, criteria_hash: int, res_type: str, criteria: str, pk: int, at: datetime
    ) -> None:
        """Record that `criteria` created resource `pk`; DuplicateKey if another create holds it."""
        try:
            await conn.execute(
                insert(conditional_create).values(
                    criteria_hash=criteria_hash, res_type=res_type, criteria=criteria, res_pk=pk, created=at
                )
            )
        except IntegrityError as exc:
            raise DuplicateKey(criteria) from exc

    async def release_conditional(self, conn: AsyncConnection, criteria_hash: int) -> None:
        await conn.execute(
            delete(conditional_create).where(conditional_create.c.criteria_hash == criteria_hash)
        )

    async def release_conditionals_of(self, conn: AsyncConnection, pk: int) -> None:
        await conn.execute(delete(conditional_create).where(conditional_create.c.res_pk == pk))
