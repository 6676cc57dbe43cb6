"""CRUD load benchmark: Helsebro against the bare storage route (bench.bare_app), on SQLite and PostgreSQL.

    python -m bench.crud [--databases sqlite,postgresql] [--requests 2000] [--concurrency 32] [--auth] [--workers N]

Per database: a fresh database, `alembic upgrade head`, Helsebro and the bare app as uvicorn subprocesses on
127.0.0.1, then measured phases (each after a warm-up), one at a time so the two servers never compete for
CPU. Prints a table and the Helsebro ÷ bare ratios, and writes bench/results/crud-<database>.json.

With --auth Helsebro runs as deployed (AUTH_MODE=jwt, the development issuer with a key this script makes):
every request carries a system client's token (system/*.cruds) and is checked by the access policy; each
create and update stores its AuditEvent in its own unit of work, each read waits for its audit's group
commit. The bare route has no security: the ratio says what the whole server costs. Results go to
crud-auth-<database>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import (
    DATABASES,
    DEFAULT_RESULTS_DIR,
    FHIR_JSON,
    Server,
    Tally,
    cpu_pct,
    delta,
    fmt_num,
    fmt_pct,
    fresh_database,
    host_busy_s,
    log_tail,
    migrate,
    open_clients,
    percentile,
    run_main,
    settle,
    start_server,
    stop_process,
    system_client,
    tree_cpu_s,
    wait_ready,
    write_json_report,
)

BODY_HEADERS = {"Content-Type": FHIR_JSON}
PHASES = 5  # helsebro create, read, update; bare create, read
NOISE_CPU_PCT = 20  # other processes' CPU (percent of one core) above which a SQLite phase is flagged

# -- synthetic patients ---------------------------------------------------------------------------------
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
FAMILIES = (
    "Nordmann",
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Berg",
    "Dahl",
)
GIVEN = ("Ola", "Kari", "Per", "Ingrid", "Lars", "Sigrid", "Nils", "Astrid", "Jon", "Solveig")
CITIES = (("Oslo", "0150"), ("Bergen", "5003"), ("Trondheim", "7011"), ("Tromsø", "9008"), ("Bodø", "8006"))
_FNR_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_FNR_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _mod11(digits: Sequence[int], weights: Sequence[int]) -> int | None:
    check = 11 - sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if check == 11 else None if check == 10 else check


def synthetic_fnr(seed: int) -> str:
    """A fødselsnummer with valid check digits and month + 80: the synthetic range, never a real person."""
    day, month, year = 1 + seed % 28, 81 + (seed // 28) % 12, 40 + (seed // 336) % 60
    for offset in range(500):
        individual = (seed + offset) % 500  # 000-499: born 1900-1999
        digits = [int(c) for c in f"{day:02d}{month:02d}{year:02d}{individual:03d}"]
        first = _mod11(digits, _FNR_WEIGHTS_1)
        second = None if first is None else _mod11([*digits, first], _FNR_WEIGHTS_2)
        if first is not None and second is not None:
            return "".join(map(str, digits)) + f"{first}{second}"
    raise AssertionError("unreachable: some individual number always has valid check digits")


def patient(seed: int) -> dict[str, Any]:
    fnr = synthetic_fnr(seed)
    city, postal_code = CITIES[seed % len(CITIES)]
    return {
        "resourceType": "Patient",
        "identifier": [{"system": FNR_SYSTEM, "value": fnr}],
        "active": True,
        "name": [{"use": "official", "family": FAMILIES[seed % 10], "given": [GIVEN[seed // 10 % 10]]}],
        "gender": "male" if int(fnr[8]) % 2 else "female",  # the fødselsnummer's rule
        "birthDate": f"19{fnr[4:6]}-{int(fnr[2:4]) - 80:02d}-{fnr[0:2]}",
        "address": [
            {"line": [f"Storgata {1 + seed % 200}"], "city": city, "postalCode": postal_code, "country": "NO"}
        ],
    }


def updated_patient(seed: int, res_id: str) -> dict[str, Any]:
    # A phone number unique to the seed: every update really changes the resource (no no-op updates).
    return {
        **patient(seed),
        "id": res_id,
        "telecom": [{"system": "phone", "value": f"+47 4{seed % 10_000_000:07d}", "use": "mobile"}],
    }


class Seeds:
    """Hands out fresh seeds, so every created patient (warm-up included) has its own identifier."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> range:
        taken = range(self.next, self.next + count)
        self.next += count
        return taken


# -- load driving ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """One phase's requests, built before the clock starts so the client spends its CPU on HTTP only."""

    method: str
    urls: Sequence[str]
    bodies: Sequence[bytes] | None
    expect: int
    # Called with every expected response; raising ValueError turns the response into an error.
    on_ok: Callable[[int, httpx.Response], None] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # on every request (the token)


async def drive(clients: Sequence[httpx.AsyncClient], load: Load, deadline: float, pid: int) -> Tally:
    """Send every request of `load`, one in flight per client; stop starting new ones at the deadline."""
    tally = Tally()
    count = len(load.urls)
    next_index = 0

    async def one(client: httpx.AsyncClient, index: int) -> None:
        content = load.bodies[index] if load.bodies is not None else None
        headers = {**BODY_HEADERS, **load.headers} if content is not None else load.headers
        started = time.perf_counter()
        try:
            response = await client.request(load.method, load.urls[index], content=content, headers=headers)
        except httpx.HTTPError as exc:
            tally.error(type(exc).__name__, str(exc))
            return
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != load.expect:
            tally.error(
                f"HTTP {response.status_code}", f"{load.method} {load.urls[index]} -> {response.text}"
            )
            return
        try:
            if load.on_ok is not None:
                load.on_ok(index, response)
        except ValueError as exc:
            tally.error("bad response", str(exc))
            return
        tally.ok += 1

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < count and time.monotonic() < deadline:
            index, next_index = next_index, next_index + 1
            await one(client, index)
        tally.sent = next_index

    server_cpu, host_busy, client_cpu = tree_cpu_s(pid), host_busy_s(), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients[:count]))
    tally.elapsed_s = time.perf_counter() - started
    tally.client_cpu_s = time.process_time() - client_cpu
    tally.server_cpu_s = delta(server_cpu, tree_cpu_s(pid))
    tally.host_busy_s = delta(host_busy, host_busy_s())
    return tally


@dataclass(frozen=True)
class PhaseResult:
    target: str
    phase: str
    requested: int
    sent: int
    ok: int
    errors: int
    error_kinds: dict[str, int]
    error_samples: list[str]
    warmup_errors: int
    requests_per_s: float  # expected responses per second of wall time
    p50_ms: float
    p99_ms: float
    elapsed_s: float
    client_cpu_pct: float  # of one core; near 100 means the load generator, not the server, is the limit
    server_cpu_pct: float | None  # of one core, the uvicorn process only (not PostgreSQL's backends)
    # Of one core: the rest of the host (PostgreSQL, and anything else running: a noisy-neighbour check).
    other_cpu_pct: float | None
    # Server CPU per expected response: steadier than req/s when something else competes for the cores.
    server_cpu_ms_per_request: float | None
    truncated: bool  # the time limit stopped the phase early


def summarize(target: str, phase: str, requested: int, tally: Tally, warmup_errors: int) -> PhaseResult:
    latencies = sorted(tally.latencies_ms)
    other_cpu_s = tally.other_cpu_s()
    elapsed = tally.elapsed_s or 1e-9
    return PhaseResult(
        target=target,
        phase=phase,
        requested=requested,
        sent=tally.sent,
        ok=tally.ok,
        errors=sum(tally.errors.values()),
        error_kinds=dict(tally.errors),
        error_samples=tally.error_samples,
        warmup_errors=warmup_errors,
        requests_per_s=round(tally.ok / elapsed, 1),
        p50_ms=round(percentile(latencies, 50), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        elapsed_s=round(tally.elapsed_s, 3),
        client_cpu_pct=round(100 * tally.client_cpu_s / elapsed, 1),
        server_cpu_pct=cpu_pct(tally.server_cpu_s, elapsed),
        other_cpu_pct=cpu_pct(other_cpu_s, elapsed),
        server_cpu_ms_per_request=(
            None
            if tally.server_cpu_s is None or not tally.ok
            else round(1000 * tally.server_cpu_s / tally.ok, 3)
        ),
        truncated=tally.sent < requested,
    )


# -- phases ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    databases: tuple[str, ...]
    requests: int
    concurrency: int
    warmup: int
    time_limit_s: float
    results_dir: Path
    auth: bool = False
    workers: int = 1  # server processes of Helsebro and of the bare route alike


@dataclass
class Target:
    name: str
    server: Server
    clients: list[httpx.AsyncClient]  # one per concurrent request
    prefix: str  # "" for Helsebro, "/bare" for the bare app
    headers: Mapping[str, str] = field(default_factory=dict)  # the token, for Helsebro with --auth


def id_from_location(response: httpx.Response, res_type: str) -> str:
    location: str = response.headers.get("location", "")
    marker = f"/{res_type}/"
    if marker not in location:
        raise ValueError(f"no {res_type} id in Location '{location[:120]}'")
    return location.split(marker, 1)[1].split("/", 1)[0]


def create_load(target: Target, seeds: range, created: list[str] | None) -> Load:
    def remember(_index: int, response: httpx.Response) -> None:
        res_id = id_from_location(response, "Patient")
        if created is not None:
            created.append(res_id)

    return Load(
        "POST",
        [f"{target.server.base_url}{target.prefix}/Patient"] * len(seeds),
        [orjson.dumps(patient(seed)) for seed in seeds],
        201,
        remember,
        target.headers,
    )


def read_load(target: Target, ids: Sequence[str], count: int) -> Load:
    base = f"{target.server.base_url}{target.prefix}/Patient"
    return Load("GET", [f"{base}/{ids[i % len(ids)]}" for i in range(count)], None, 200, None, target.headers)


def update_load(target: Target, ids: Sequence[str], seeds: range) -> Load:
    base = f"{target.server.base_url}{target.prefix}/Patient"
    pairs = [(ids[i % len(ids)], seed) for i, seed in enumerate(seeds)]
    return Load(
        "PUT",
        [f"{base}/{res_id}" for res_id, _ in pairs],
        [orjson.dumps(updated_patient(seed, res_id)) for res_id, seed in pairs],
        200,
        None,
        target.headers,
    )


async def measure(
    target: Target, phase: str, make_load: Callable[[int], Load], opts: Options, deadline: float
) -> PhaseResult:
    """A warm-up (not counted: connections, pools, caches and code paths get hot), then the measured run."""
    pid = target.server.process.pid
    warmup = await drive(target.clients, make_load(opts.warmup), deadline, pid)
    if warmup.errors:
        print(
            f"  {target.name:<9} {phase:<7} warm-up errors: {dict(warmup.errors)} {warmup.error_samples[:2]}"
        )
    tally = await drive(target.clients, make_load(opts.requests), deadline, pid)
    result = summarize(target.name, phase, opts.requests, tally, sum(warmup.errors.values()))
    print(
        f"  {target.name:<9} {phase:<7} {result.requests_per_s:>8.1f} req/s  p50 {result.p50_ms:.1f} ms"
        f"  p99 {result.p99_ms:.1f} ms  errors {result.errors}",
        flush=True,
    )
    return result


async def run_phases(
    helsebro: Target, bare: Target, opts: Options, deadline: float, database_url: str
) -> list[PhaseResult]:
    seeds = Seeds()
    created: list[str] = []  # Helsebro's ids, warm-up included: the read and update phases use them
    # (target, phase, load factory, needs created ids). Both reads see the same ids and database state.
    plan: list[tuple[Target, str, Callable[[int], Load], bool]] = [
        (helsebro, "create", lambda n: create_load(helsebro, seeds.take(n), created), False),
        (bare, "create", lambda n: create_load(bare, seeds.take(n), None), False),
        (helsebro, "read", lambda n: read_load(helsebro, created, n), True),
        (bare, "read", lambda n: read_load(bare, created, n), True),
        (helsebro, "update", lambda n: update_load(helsebro, created, seeds.take(n)), True),
    ]
    results = []
    for target, phase, make_load, needs_ids in plan:
        if phase == "read" and target is helsebro:
            await settle(database_url, ("resource", "resource_version", "idx_token"))
        if time.monotonic() >= deadline or (needs_ids and not created):
            reason = "time limit reached" if time.monotonic() >= deadline else "no Patient was created"
            print(f"  {target.name:<9} {phase:<7} skipped: {reason}", flush=True)
            continue
        results.append(await measure(target, phase, make_load, opts, deadline))
    return results


def ratio(results: Sequence[PhaseResult], phase: str) -> float | None:
    """Helsebro req/s ÷ bare req/s for a phase."""
    rates = {r.target: r.requests_per_s for r in results if r.phase == phase}
    helsebro, bare = rates.get("helsebro"), rates.get("bare")
    if helsebro is None or not bare:
        return None
    return round(helsebro / bare, 3)


def cpu_ratio(results: Sequence[PhaseResult], phase: str) -> float | None:
    """Bare ÷ Helsebro server CPU per request: the req/s ratio if the server's CPU were the only limit."""
    costs = {r.target: r.server_cpu_ms_per_request for r in results if r.phase == phase}
    helsebro, bare = costs.get("helsebro"), costs.get("bare")
    if not helsebro or bare is None:
        return None
    return round(bare / helsebro, 3)


def security(workdir: Path, opts: Options) -> tuple[dict[str, str], dict[str, str]]:
    """Helsebro's environment and the headers of its requests: authentication off, or (--auth) on with
    the development issuer and a system client's token."""
    if not opts.auth:
        return {"AUTH_MODE": "off"}, {}
    return system_client(workdir, "bench-crud", "system/*.cruds", opts.time_limit_s)


async def bench_database(kind: str, opts: Options, deadline: float) -> dict[str, Any]:
    print(
        f"\n== {kind}: {opts.requests} requests per phase, concurrency {opts.concurrency}, "
        f"warm-up {opts.warmup}, authentication {'on' if opts.auth else 'off'} ==",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-") as tmp:
        workdir = Path(tmp)
        env, headers = security(workdir, opts)
        async with fresh_database(kind, workdir) as url:
            await asyncio.to_thread(migrate, url)
            async with AsyncExitStack() as stack:
                servers = [
                    start_server("helsebro", "app.main:create_app", url, workdir, env, opts.workers),
                    start_server("bare", "bench.bare_app:create_bare_app", url, workdir, None, opts.workers),
                ]
                for server in servers:
                    stack.callback(stop_process, server.process)  # runs last: after the clients close
                clients = await open_clients(stack, opts.concurrency)
                helsebro = Target("helsebro", servers[0], clients, "", headers)
                bare = Target("bare", servers[1], await open_clients(stack, opts.concurrency), "/bare")
                await wait_ready(helsebro.clients[0], helsebro.server, "/metadata", 200)
                await wait_ready(bare.clients[0], bare.server, "/bare/Patient/ready-check", None)
                results = await run_phases(helsebro, bare, opts, deadline, url)
            # Stopped by now: the logs are complete. At WARNING level, any line is worth a look.
            server_logs = {s.name: log_tail(s.log_path, 40) for s in servers}
    return {
        "database": kind,
        "database_url": url,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "requests": opts.requests,
            "concurrency": opts.concurrency,
            "warmup": opts.warmup,
            "auth": opts.auth,
            "workers": opts.workers,
        },
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "phases": [asdict(r) for r in results],
        "ratios": {"read": ratio(results, "read"), "create": ratio(results, "create")},
        "cpu_ratios": {"read": cpu_ratio(results, "read"), "create": cpu_ratio(results, "create")},
        "server_logs": server_logs,
    }


# -- reporting ------------------------------------------------------------------------------------------
def format_report(report: dict[str, Any]) -> str:
    header = (
        f"{'target':<9} {'phase':<7} {'ok/sent':>11} {'errors':>6} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'client cpu':>10} {'server cpu':>10} {'other cpu':>9} {'cpu ms/req':>10}"
    )
    auth = "authentication on" if report["options"]["auth"] else "authentication off"
    lines = [f"\n{report['database']} ({report['database_url']}), {auth}", header, "-" * len(header)]
    for p in report["phases"]:
        flag = "  (time limit)" if p["truncated"] else ""
        lines.append(
            f"{p['target']:<9} {p['phase']:<7} {p['ok']:>5}/{p['sent']:<5} {p['errors']:>6} "
            f"{p['requests_per_s']:>8.1f} {p['p50_ms']:>7.1f} {p['p99_ms']:>7.1f} "
            f"{fmt_pct(p['client_cpu_pct']):>10} {fmt_pct(p['server_cpu_pct']):>10} "
            f"{fmt_pct(p['other_cpu_pct']):>9} {fmt_num(p['server_cpu_ms_per_request'], 3):>10}{flag}"
        )
    ratios, cpu_ratios = report["ratios"], report["cpu_ratios"]
    lines.append(
        f"Helsebro ÷ bare: reads/s {fmt_num(ratios['read'])} (target >= 0.8), "
        f"creates/s {fmt_num(ratios['create'])}"
    )
    lines.append(
        f"bare ÷ Helsebro server CPU per request: reads {fmt_num(cpu_ratios['read'])}, "
        f"creates {fmt_num(cpu_ratios['create'])}"
    )
    for p in report["phases"]:
        if report["database"] == "sqlite" and (p["other_cpu_pct"] or 0) > NOISE_CPU_PCT:
            # On PostgreSQL "other" is mostly the database itself; on SQLite it is someone else's work.
            lines.append(
                f"! {p['target']} {p['phase']}: other processes used {p['other_cpu_pct']:.0f}% CPU: noisy"
            )
        if p["errors"] or p["warmup_errors"]:
            lines.append(
                f"! {p['target']} {p['phase']}: {p['error_kinds']} (+{p['warmup_errors']} in warm-up)"
            )
            lines.extend(f"    {sample}" for sample in p["error_samples"])
    for name, log in report["server_logs"].items():
        if log.strip():
            lines.append(f"! {name} server log (last lines):")
            lines.extend(f"    {line}" for line in log.splitlines())
    return "\n".join(lines)


def write_report(report: dict[str, Any], results_dir: Path) -> Path:
    options = report["options"]
    prefix = "crud-auth" if options["auth"] else "crud"
    prefix += f"-w{options['workers']}" if options.get("workers", 1) > 1 else ""
    return write_json_report(report, results_dir, prefix)


# -- entry point ----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crud", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql (default: both)"
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests per phase (default 2000)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each phase")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=300.0,
        help="seconds for the whole run; phases stop early when it is reached (default 300)",
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument(
        "--auth",
        action="store_true",
        help="run Helsebro with authentication, access policy and audit on (a system client's token)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes of both targets (default 1; PostgreSQL)"
    )
    args = parser.parse_args(argv)
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    unknown = [d for d in databases if d not in DATABASES]
    if unknown or not databases:
        parser.error(f"--databases takes {', '.join(DATABASES)}; got {args.databases!r}")
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0 or args.time_limit <= 0:
        parser.error("--requests and --concurrency must be >= 1, --warmup >= 0, --time-limit > 0")
    return Options(
        databases,
        args.requests,
        args.concurrency,
        args.warmup,
        args.time_limit,
        args.results_dir,
        args.auth,
        args.workers,
    )


async def run(opts: Options) -> int:
    deadline = time.monotonic() + opts.time_limit_s
    failed = False
    # Backstop beyond the phases' own deadline: server start-up, migrations and shutdown are bounded too.
    async with asyncio.timeout(opts.time_limit_s + 120):
        for kind in opts.databases:
            if time.monotonic() >= deadline:
                print(f"\n== {kind}: skipped, time limit reached ==", flush=True)
                failed = True
                continue
            report = await bench_database(kind, opts, deadline)
            print(format_report(report))
            print(f"-> {write_report(report, opts.results_dir)}", flush=True)
            failed |= len(report["phases"]) < PHASES or any(
                p["errors"] or p["truncated"] for p in report["phases"]
            )
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_main(lambda: run(opts))


if __name__ == "__main__":
    sys.exit(main())
