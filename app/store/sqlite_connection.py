"""How every connection to an SQLite file is set up: the pool's, the audit appender's, the checkpointer's."""

from __future__ import annotations

import sqlite3

# How long a connection waits for another process's write lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 30000

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    # Temporary b-trees (DISTINCT, IN (subquery), materialised CTEs: the access decisions and row filters
    # have several) in memory, not in temp files (measured on a small database: 0.24 ms for a secured
    # read's statement with temp files, 0.03 ms in memory).
    "PRAGMA temp_store=MEMORY",
    # Pages read through a memory map of the file rather than a pread call each. A connection drops its
    # page cache whenever another has committed (WAL mode), so readers read B-tree pages again after
    # every write; with the map that costs no system call. Creates from 32 clients went from 358-402/s to
    # 437-468/s (two rounds each, bench/README.md).
    "PRAGMA mmap_size=1073741824",
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
