"""Helpers shared by the benchmarks: fresh databases, Helsebro as a uvicorn subprocess, CPU accounting.

Everything here talks to 127.0.0.1 only, and stops only the processes it started itself.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import httpx

from app.security.devtoken import load_or_create_key, mint_token

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"  # the only host the benchmarks ever talk to
PG_ADMIN_DSN = f"postgresql://postgres@{HOST}:5432/postgres"
PG_URL = f"postgresql+asyncpg://postgres@{HOST}:5432/{{name}}"
DATABASES = ("sqlite", "postgresql")
FHIR_JSON = "application/fhir+json"


# -- CPU accounting -------------------------------------------------------------------------------------
def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc (None where there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces; fields after it do not
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float | None:
    """process_cpu_s of a server and its live child processes (its workers, with --workers). Read at the
    ends of a phase only: polled during a load, the extra /proc reads would slow the load generator."""
    own = process_cpu_s(pid)
    if own is None:
        return None
    return own + sum(tree_cpu_s(child) or 0.0 for child in _children(pid))


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return []
    return found


def host_busy_s() -> float | None:
    """CPU seconds all cores of the host have been busy (idle and iowait excluded), from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # user..steal minus idle, iowait


def delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items spread evenly over `items` (all of them if there are fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil without floats drifting
    return sorted_values[int(rank) - 1]


# -- servers --------------------------------------------------------------------------------------------
_LIVE: set[subprocess.Popen[bytes]] = set()


@dataclass(frozen=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(
    name: str,
    factory: str,
    database_url: str,
    workdir: Path,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Server:
    """Start `uvicorn --factory <factory>` on a free port, with `workers` processes; `extra_env` adds to or
    overrides its settings."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        # The load keeps its connections between phases, and a phase of the other server can take longer
        # than uvicorn's default 5 s: the server then closed idle connections just as the next phase
        # sent on them ("Server disconnected without sending a response" in warm-ups).
        "--timeout-keep-alive",
        "300",
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    base_url = f"http://{HOST}:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BASE_URL": base_url,
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    with log_path.open("wb") as log:
        # Own session: a Ctrl-C in the terminal reaches only this script, which then stops the server itself.
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _LIVE.add(process)
    return Server(name, process, base_url, log_path)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down cleanly and disposes its pool), SIGKILL if that takes too long."""
    _LIVE.discard(process)
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)  # its own process group (start_new_session), so only what we started
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_LIVE):
        stop_process(process)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_ready(
    client: httpx.AsyncClient, server: Server, path: str, expect: int | None, wait_s: float = 60.0
) -> None:
    """Poll until the server answers (with `expect`, when given); fail fast if it exits."""
    deadline = time.monotonic() + wait_s
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{log_tail(server.log_path)}"
            )
        try:
            response = await client.get(f"{server.base_url}{path}", timeout=2.0)
            if expect is None or response.status_code == expect:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.name} did not answer within {wait_s:.0f}s:\n{log_tail(server.log_path)}"
            )
        await asyncio.sleep(0.1)


async def open_clients(
    stack: AsyncExitStack, count: int, timeout_s: float = 30.0, keep_alive: bool = True
) -> list[httpx.AsyncClient]:
    """One single-connection client per concurrent request.

    One shared client with 32 connections was itself the bottleneck (its pool costs grow with the number of
    connections: ~450 req/s at a full core, against ~850 req/s at 60% this way). trust_env=False: no proxy
    from the environment may ever sit between this script and 127.0.0.1. Without `keep_alive` every request
    has a connection of its own, so that a server of several processes gets each request on whichever
    process accepts it first (a kept connection stays with one process for the whole run).
    """
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1 if keep_alive else 0)
    return [
        await stack.enter_async_context(
            httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(timeout_s), trust_env=False)
        )
        for _ in range(count)
    ]


def code_version() -> dict[str, Any]:
    """The commit of the checkout the server runs from, and whether app/ or migrations/ differ from it.

    Taken when the server starts (it imports app/ then): others may commit while a long run goes on.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "migrations"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def code_label(code: dict[str, Any]) -> str:
    """code_version() as printed in a report's heading."""
    if code["commit"] is None:
        return "unknown"
    return f"{code['commit']}{' + local changes' if code['dirty'] else ''}"


def host_info() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}


# -- databases ------------------------------------------------------------------------------------------
@asynccontextmanager
async def fresh_database(kind: str, workdir: Path, keep_in: Path | None = None) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database, dropped afterwards unless `keep_in` is given.

    A kept PostgreSQL database stays on the server; a kept SQLite file is made in `keep_in` instead of the
    run's temp directory. Either can then be measured again without reloading (a bench's `--reuse`).
    """
    if kind == "sqlite":
        directory = workdir if keep_in is None else keep_in
        if keep_in is not None:
            await asyncio.to_thread(keep_in.mkdir, parents=True, exist_ok=True)
        name = "helsebro-bench.db" if keep_in is None else f"helsebro-bench-{uuid.uuid4().hex[:12]}.db"
        url = f"sqlite+aiosqlite:///{directory / name}"
        yield url
        if keep_in is not None:
            print(f"  kept the database: {url}", flush=True)
        return
    name = f"helsebro_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield PG_URL.format(name=name)
    finally:
        if keep_in is not None:
            print(f"  kept the database: {PG_URL.format(name=name)}", flush=True)
        else:
            admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL of a PostgreSQL database as a plain asyncpg DSN."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def migrate(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed ({result.returncode}):\n{result.stderr[-3000:]}")


# -- entry point ----------------------------------------------------------------------------------------
def _terminate(_signum: int, _frame: object) -> NoReturn:
    raise SystemExit(143)  # unwinds through the finally blocks that stop the servers and drop the database


def run_main(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a benchmark's async main on uvloop, with SIGTERM and Ctrl-C unwinding through its cleanup."""
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C must interrupt even when started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        # uvloop, like the servers (uvicorn picks it): the load generator's own overhead is kept small.
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def fmt_num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def dev_issuer_env(key_file: Path) -> dict[str, str]:
    """A server's settings for authentication with the development issuer whose key is `key_file` (made
    before the server starts: it reads the key at start-up)."""
    return {
        "AUTH_MODE": "jwt",
        "AUTH_DEV_ISSUER": "true",
        "AUTH_DEV_KEY_FILE": str(key_file),
        "AUTH_AUDIENCE": "helsebro",
    }


def system_client(
    workdir: Path, subject: str, scopes: str, lifetime_s: float
) -> tuple[dict[str, str], dict[str, str]]:
    """Helsebro's environment with authentication on (the development issuer, with a key made here), and
    the headers of a system client's requests (its token)."""
    key_file = workdir / "dev-key.json"
    load_or_create_key(key_file)  # before the server starts: it reads the key at start-up
    token = mint_token(
        key_file, subject=subject, scopes=scopes, client_id=subject, lifetime=int(lifetime_s) + 3600
    )
    return dev_issuer_env(key_file), {"Authorization": f"Bearer {token}"}


def write_json_report(report: dict[str, Any], results_dir: Path, prefix: str) -> Path:
    """bench/results/<prefix>-<database>.json (git-ignored)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{prefix}-{report['database']}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return path


async def settle(database_url: str, tables: Sequence[str] = ()) -> float:
    """Between writing and measuring: bring the freshly written rows to a steady state, so that no phase
    pays for the load's aftermath. PostgreSQL gets the VACUUM ANALYZE autovacuum would do anyway (planner
    statistics; hint bits, which the first read of a just-committed row would otherwise write), of
    `tables` or of the whole database. SQLite: fold the WAL back (Helsebro runs no ANALYZE there, so
    neither do we). Returns the seconds it took."""
    started = time.perf_counter()
    if database_url.startswith("postgresql"):
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}".rstrip(), timeout=600)
        finally:
            await conn.close()
    else:
        path = database_url.split(":///", 1)[1]
        with sqlite3.connect(path) as sqlite:
            sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


MAX_ERROR_SAMPLES = 5  # error texts kept per phase, for the report


@dataclass
class Tally:
    """What one load phase produced: latencies, errors (by kind, with a few samples) and CPU accounting."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    sent: int = 0
    ok: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    host_busy_s: float | None = None
    postgres_cpu_s: float | None = None  # bench.security: the PostgreSQL backends serving the server
    aborted: bool = False  # stopped after too many errors

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{kind}: {detail[:300]}")

    def other_cpu_s(self) -> float | None:
        """CPU the rest of the host used meanwhile (PostgreSQL, noisy neighbours): busy minus server and client."""
        if self.host_busy_s is None or self.server_cpu_s is None:
            return None
        return max(0.0, self.host_busy_s - self.server_cpu_s - self.client_cpu_s)


def merged(parts: Sequence[Tally]) -> Tally:
    """One tally of a phase run in parts (interleaved with other phases): counts, times and CPU summed
    (a CPU figure is None if any part lacks it), latencies and errors pooled."""
    total = Tally()
    for part in parts:
        total.latencies_ms += part.latencies_ms
        total.errors.update(part.errors)
        room = MAX_ERROR_SAMPLES - len(total.error_samples)
        total.error_samples += part.error_samples[: max(0, room)]
        total.sent += part.sent
        total.ok += part.ok
        total.elapsed_s += part.elapsed_s
        total.client_cpu_s += part.client_cpu_s
        total.aborted |= part.aborted
    for name in ("server_cpu_s", "host_busy_s", "postgres_cpu_s"):
        values = [getattr(part, name) for part in parts]
        setattr(total, name, None if not values or None in values else sum(values))
    return total


def cpu_pct(cpu_s: float | None, elapsed_s: float) -> float | None:
    """CPU seconds as percent of one core over `elapsed_s`."""
    return None if cpu_s is None else round(100 * cpu_s / elapsed_s, 1)
