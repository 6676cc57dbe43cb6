"""Database engines: one pool, with a read flavour (no transaction round trips) and a write flavour."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.store.postgres_appender import PostgresAppender
from app.store.replica import ReadRouting
from app.store.sqlite_appender import SqliteAppender
from app.store.sqlite_checkpoint import SqliteCheckpointer
from app.store.sqlite_connection import SQLITE_PRAGMAS
from app.store.sqlite_driver import OneTripConnection, OneTripDBAPI

_MODE = WRITE_MODE_KEY = "helsebro_mode"


class Appender(Protocol):
    """Append-only batches (the audit trail) committed on their own, in one trip to the database."""

    async def append(self, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> None: ...

    async def close(self) -> None: ...


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _in_memory(url: str) -> bool:
    return is_sqlite(url) and (":memory:" in url or "mode=memory" in url or url.rstrip("/").endswith(":"))


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so writers can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_MODE)
        if mode == "read":
            return  # single statements in autocommit: readers never hold a snapshot open
        # IMMEDIATE takes the write lock up front: concurrent writers queue (busy_timeout) instead of
        # failing late on lock upgrade, which also makes read-check-write sequences race-free. From then
        # on the unit's statements run on the event loop's thread (sqlite_driver.py).
        if mode == "write":
            driver = conn.connection.dbapi_connection
            assert isinstance(driver, OneTripConnection)
            driver.begin_write()
        else:
            conn.exec_driver_sql("BEGIN")


def _configure_postgres(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A pooled connection the server has closed (restart, failover, pg_terminate_backend) is known
        # to asyncpg as closed as soon as the event loop has seen the socket end: the pool replaces it
        # rather than handing it to a request that would fail. Unlike pool_pre_ping this costs no round
        # trip (pre-ping measured 0.2-0.4 ms per checkout, a fifth of a read).
        driver_connection = getattr(dbapi_connection, "_connection", None)
        if driver_connection is not None and driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


class Database:
    def __init__(
        self,
        url: str,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        echo: bool = False,
        statement_timeout_ms: int = 0,
        pool_timeout_s: float = 30.0,
        read_url: str = "",
    ) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        # SQLite: a few connections and no overflow. Each connection is a thread; with 20 of them serving
        # 16 concurrent requests, reads ran at ~1,150/s against ~1,600/s with 2 to 8 (bench.security, the
        # client then being the limit), and overflow opens and closes a connection and its thread per
        # checkout under load (~770/s). No request holds one connection while it waits for another (the
        # test suite runs with a pool of one to keep it so), so a small pool cannot deadlock.
        # (An in-memory SQLite database lives in its one connection: SQLAlchemy's StaticPool, no sizes.)
        # PostgreSQL: 30 connections and no overflow either. An overflow connection is closed when it is
        # returned, so every burst above the pool size opened and closed a PostgreSQL backend per request
        # (a process start, authentication, cold catalog caches, every statement prepared again): with
        # 20 + 10 and 32 clients, bench.crud --auth created 136 Patients/s and read 282/s, with 30 + 0
        # 261/s and 513/s. A request beyond the pool waits for a connection instead.
        default_size, default_overflow = (6, 0) if self.sqlite else (30, 0)
        kwargs: dict[str, Any] = {"echo": echo}
        if not _in_memory(url):
            kwargs.update(
                pool_size=default_size if pool_size is None else pool_size,
                max_overflow=default_overflow if max_overflow is None else max_overflow,
                pool_timeout=pool_timeout_s,
            )
        if self.sqlite:
            _ensure_sqlite_dir(url)
            kwargs["module"] = OneTripDBAPI()  # one trip to the connection's thread per statement
            # A write unit's statements run on the event loop's thread once it holds the lock.
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=False)
            if statement_timeout_ms > 0:
                # Enforced by the server on every statement of every connection; the error it gives
                # (57014 query_canceled) answers 503 (app/errors.py, app/store/errors.py).
                kwargs["connect_args"] = {"server_settings": {"statement_timeout": str(statement_timeout_ms)}}
        self.engine = create_async_engine(url, **kwargs)
        if self.sqlite:
            _configure_sqlite(self.engine)
            self.read_engine = self.engine.execution_options(**{_MODE: "read"})
        else:
            _configure_postgres(self.engine)
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._writer: AsyncEngine | None = None
        if self.sqlite and not _in_memory(url):
            # One connection for every write unit of this process (they queue for write_slot anyway), so
            # its page cache stays warm. In WAL mode a connection drops its whole cache when another has
            # committed, so units spread over the pool read the B-trees back with ~90 pread calls per
            # create.
            self._writer = create_async_engine(url, **{**kwargs, "pool_size": 1, "max_overflow": 0})
            _configure_sqlite(self._writer)
        self.write_engine = (self._writer or self.engine).execution_options(**{_MODE: "write"})
        # A PostgreSQL streaming replica for reads that may be served there (app/store/replica.py).
        self.replica: AsyncEngine | None = None
        self.routing: ReadRouting | None = None
        if read_url:
            if self.sqlite or is_sqlite(read_url):
                raise ValueError("DATABASE_READ_URL is for a PostgreSQL replica of a PostgreSQL DATABASE_URL")
            self.replica = create_async_engine(read_url, **kwargs)
            _configure_postgres(self.replica)
            replica_reads = self.replica.execution_options(isolation_level="AUTOCOMMIT")
            self.routing = ReadRouting(self.read_engine, replica_reads)
        # SQLite has one writer at a time. Queueing writers of this process here, rather than letting each
        # connection spin in SQLite's busy handler (which sleeps up to 100 ms per try), keeps write latency
        # flat under load. Other processes on the same file are still handled by busy_timeout.
        self._write_lock = asyncio.Lock() if self.sqlite else None
        # Append-only batches (the audit trail): on an SQLite file one trip to a thread of their own, on
        # PostgreSQL one statement (an in-memory SQLite database has only its one connection).
        self.appender: Appender | None = None
        self.checkpointer: SqliteCheckpointer | None = None
        if self.sqlite and not _in_memory(url):
            path = self.engine.sync_engine.url.database
            assert path is not None
            self.appender = SqliteAppender(path, self.engine.dialect, self.write_slot)
            self.checkpointer = SqliteCheckpointer(path)  # started by the first write
        elif not self.sqlite:
            self.appender = PostgresAppender(self.engine)

    @asynccontextmanager
    async def write_slot(self) -> AsyncIterator[None]:
        if self.checkpointer is not None and not self.checkpointer.running:
            self.checkpointer.start()  # first write, or the first after dispose()
        async with self._write_lock if self._write_lock is not None else contextlib.nullcontext():
            yield

    async def dispose(self) -> None:
        if self.appender is not None:
            await self.appender.close()
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        await self.engine.dispose()
        if self._writer is not None:
            await self._writer.dispose()
        if self.replica is not None:
            await self.replica.dispose()
