"""Bulk work beside interactive requests: `python -m bench.jobs [--database sqlite|postgresql]`.

1. Imports Synthea bundles with the import command (`python -m app.load`, in its own process, as an
   operator would run it) and reports resources per second.
2. Starts a server (authentication off) and measures reads (GET of known resources, `--concurrency`
   clients) while idle, then while an asynchronous `$reindex` job runs (Prefer: respond-async), then while
   an `$export` job runs; reports the reads' p50/p99 in each phase and how long each job took, and the
   synchronous `$reindex` for comparison (a request that holds the server for the whole rebuild).
Results go to bench/results/jobs-<database>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REPO_ROOT,
    code_version,
    fresh_database,
    migrate,
    open_clients,
    percentile,
    run_main,
    settle,
    start_server,
    stop_process,
    wait_ready,
    write_json_report,
)
from bench.ingest import DATA_DIR_ENV, default_data_dir

DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"
ASYNC = {"Prefer": "respond-async"}


def load_data(database_url: str, bundles: int, workdir: Path) -> dict[str, Any]:
    source = default_data_dir()
    files = sorted(source.glob("*.json*"))
    if not files:
        raise SystemExit(f"no Synthea bundles in {source} (set {DATA_DIR_ENV})")
    chosen = [f for f in files if f.name.startswith(("0-", "1-"))] or []  # shared organisations first
    chosen += [f for f in files if f not in chosen][:bundles]
    data = workdir / "data"
    data.mkdir()
    for f in chosen:
        (data / f.name).symlink_to(f)
    env = {**os.environ, "DATABASE_URL": database_url, "AUTH_MODE": "off", "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.load", str(data), "--quiet"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"app.load failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    stored = int(done.stdout.split(" resources and messages stored")[0].split()[-1])
    return {
        "files": len(chosen),
        "resources": stored,
        "seconds": round(elapsed, 1),
        "per_s": round(stored / elapsed),
    }


async def _targets(http: httpx.AsyncClient) -> list[str]:
    found = []
    for res_type in ("Patient", "Observation", "Condition", "Encounter"):
        bundle = (await http.get(f"/{res_type}", params={"_count": "200", "_elements": "id"})).json()
        found += [f"{res_type}/{e['resource']['id']}" for e in bundle.get("entry", [])]
    return found


async def _reads(clients: list[httpx.AsyncClient], targets: list[str], until: asyncio.Event) -> list[float]:
    """Read random targets from every client until `until` is set; latencies in ms."""
    latencies: list[float] = []

    async def one(http: httpx.AsyncClient) -> None:
        while not until.is_set():
            started = time.perf_counter()
            response = await http.get(random.choice(targets))
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"read answered {response.status_code}")

    await asyncio.gather(*(one(http) for http in clients))
    return latencies


def _summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "reads": len(ordered),
        "reads_per_s": round(len(ordered) / seconds),
        "p50_ms": round(percentile(ordered, 50), 1),
        "p99_ms": round(percentile(ordered, 99), 1),
    }


async def _idle(clients: list[httpx.AsyncClient], targets: list[str], seconds: float) -> dict[str, Any]:
    until = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, until.set)
    return _summary(await _reads(clients, targets, until), seconds)


async def _during_job(
    clients: list[httpx.AsyncClient], targets: list[str], http: httpx.AsyncClient, path: str, method: str
) -> dict[str, Any]:
    """Reads while a job runs, until its status answers 200."""
    started = time.perf_counter()
    kick_off = await http.request(method, path, headers=ASYNC)
    if kick_off.status_code != 202:
        raise RuntimeError(f"{path} answered {kick_off.status_code}: {kick_off.text[:300]}")
    status_url = kick_off.headers["Content-Location"]
    until = asyncio.Event()

    async def poll() -> None:
        while True:
            if (await http.get(status_url)).status_code != 202:
                until.set()
                return
            await asyncio.sleep(0.2)

    latencies, _ = await asyncio.gather(_reads(clients, targets, until), poll())
    elapsed = time.perf_counter() - started
    return {"job_seconds": round(elapsed, 1), **_summary(latencies, elapsed)}


async def run(database: str, bundles: int, concurrency: int, idle_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-jobs-") as tmp:
        workdir = Path(tmp)
        async with fresh_database(database, workdir) as url:
            migrate(url)
            loaded = load_data(url, bundles, workdir)
            await settle(url)
            server = start_server("jobs", "app.main:create_app", url, workdir, {"AUTH_MODE": "off"})
            try:
                async with AsyncExitStack() as stack:
                    http = await stack.enter_async_context(
                        httpx.AsyncClient(base_url=server.base_url, timeout=600, trust_env=False)
                    )
                    await wait_ready(http, server, "/metadata", 200)
                    clients = await open_clients(stack, concurrency)
                    for client in clients:
                        client.base_url = httpx.URL(server.base_url)
                    targets = await _targets(http)
                    idle = await _idle(clients, targets, idle_s)
                    reindex = await _during_job(clients, targets, http, "/$reindex", "POST")
                    export = await _during_job(clients, targets, http, "/$export", "GET")
                    started = time.perf_counter()
                    await http.post("/$reindex")
                    sync_s = time.perf_counter() - started
            finally:
                stop_process(server.process)
    return {
        "database": database,
        "code": code_version(),
        "load": loaded,
        "reads_idle": idle,
        "reads_during_async_reindex": reindex,
        "reads_during_export": export,
        "sync_reindex_seconds": round(sync_s, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--bundles", type=int, default=40, help="Synthea patient bundles to import (40)")
    parser.add_argument("--concurrency", type=int, default=8, help="reading clients (8)")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)

    async def go() -> int:
        report = await run(args.database, args.bundles, args.concurrency, args.idle_seconds)
        path = write_json_report(report, args.results_dir, "jobs")
        for key in ("load", "reads_idle", "reads_during_async_reindex", "reads_during_export"):
            print(f"{key}: {report[key]}")
        print(f"sync_reindex_seconds: {report['sync_reindex_seconds']}\nwritten to {path}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
