"""How every connection to an SQLite file is set up: the pool's, the audit appender's, the checkpointer's."""

from __future__ import annotations

import sqlite3

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    # Temporary b-trees (DISTINCT, IN (subquery), materialised CTEs: the access decisions and row filters
    # have several) in memory, not in temp files (measured on a small database: 0.24 ms for a secured
    # read's statement with temp files, 0.03 ms in memory).
    "PRAGMA temp_store=MEMORY",
    # Checkpoints run in a thread of their own (sqlite_checkpoint.py), not inside whichever commit takes the
    # log past 1,000 pages while it holds the write lock; the log file is trimmed back to 64 MiB at most.
    "PRAGMA wal_autocheckpoint=0",
    "PRAGMA journal_size_limit=67108864",
)


def connect(path: str) -> sqlite3.Connection:
    """A connection of our own (outside the pool) to the file at `path`, set up as the pool's are, with
    transactions under the caller's control."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    return conn
