"""`GET /Patient/{id}/$summary` (the core journal's IPS document) on patients with full Synthea histories.

    python -m bench.summary [--databases sqlite,postgresql] [--bundles N] [--patients 2] [--requests 300]
                            [--concurrency 4] [--rounds 2]

Per database: a fresh database, `alembic upgrade head`, and two Helsebro servers on it as uvicorn
subprocesses on 127.0.0.1: `off` (AUTH_MODE=off: the engine) and `on` (AUTH_MODE=jwt with the development
issuer: authentication, access policy and audit, as deployed). The Synthea transaction bundles are loaded
through `off` as bench.ingest loads them; then a GP office, its GP (HPR) and, for every measured patient,
an active EpisodeOfCare managed by them (the care relation) are written through `on` with a system token.
Measured: the `--patients` patients with the most resources and the median one, each on its own,
`--requests` sequential `$summary` requests (one in flight) on each server, after a warm-up, in
`--rounds` interleaved parts (off, on, on, off, ...); then throughput at `--concurrency` over all of
them. On `on` the caller is the GP (personnel, `user/*.rs`): every summary is decided by the policy and
audited (the Patient read and one event per section search), and the AuditEvents are counted around
every part. Every response must be a 200 document Bundle whose first entry is the patient's Composition.
Prints tables and writes bench/results/summary-<database>.json; the exit status is 0 only without errors.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import event

from app.config import Settings
from app.main import create_app
from app.security.devtoken import load_or_create_key
from app.store.driver_sql import DriverStatement
from bench.common import (
    DATABASES,
    DEFAULT_RESULTS_DIR,
    FHIR_JSON,
    Server,
    Tally,
    code_label,
    code_version,
    dev_issuer_env,
    fmt_num,
    fmt_pct,
    fresh_database,
    host_info,
    log_tail,
    merged,
    migrate,
    open_clients,
    percentile,
    run_main,
    settle,
    spread,
    start_server,
    stop_process,
    wait_ready,
    write_json_report,
)
from bench.ingest import (
    DATA_DIR_ENV,
    SYNTHEA_SYSTEM,
    BundleFile,
    default_data_dir,
    ingest,
    load_bundles,
    server_env,
)
from bench.security import (
    ORG_ID,
    PRACTITIONER_ID,
    AuditCheck,
    Credentials,
    Load,
    PhaseResult,
    audit_count,
    care_setting,
    check_modes,
    credentials,
    drive,
    part,
    postgres_database,
    summarize,
    transaction,
)

TARGET_P99_MS = 100.0  # the issue: p99 under 100 ms on the loaded Synthea set (the fullest patient, secured)
NOISE_CPU_PCT = 20  # other processes' CPU (percent of one core) above which a SQLite phase is flagged
BUNDLE_TYPE, FIRST_ENTRY = "document", "Composition"


# -- the measured patients ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One measured patient: the bundle they came in, their id on the server, what their summary holds."""

    label: str  # "fullest 1", ..., "median"
    bundle: str
    resources: int  # entries of their Synthea bundle
    patient_id: str
    document_entries: int = 0  # entries of the summary Bundle (Composition and Patient included)
    document_bytes: int = 0
    sections: Mapping[str, int] = field(default_factory=dict)  # section title -> entries
    audit_per_summary: int = 0  # AuditEvents one secured summary adds


def choose(bundles: Sequence[BundleFile], fullest: int) -> list[tuple[str, BundleFile]]:
    """The `fullest` patient bundles with the most entries, and the median one (by entries)."""
    patients = sorted((b for b in bundles if b.stage == 2), key=lambda b: (-b.entries, b.name))
    chosen = [(f"fullest {i + 1}", b) for i, b in enumerate(patients[:fullest])]
    median = patients[len(patients) // 2]
    if median not in patients[:fullest]:
        chosen.append(("median", median))
    return chosen


def patient_in(bundle: BundleFile) -> str:
    """The Synthea id of the bundle's Patient (its identifier in Synthea's system)."""
    for entry in orjson.loads(bundle.body).get("entry") or ():
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Patient":
            for identifier in resource.get("identifier") or ():
                if identifier.get("system") == SYNTHEA_SYSTEM:
                    return str(identifier["value"])
    raise RuntimeError(f"{bundle.name}: no Patient with a Synthea identifier")


async def server_id(client: httpx.AsyncClient, server: Server, synthea_id: str) -> str:
    query = urlencode({"identifier": f"{SYNTHEA_SYSTEM}|{synthea_id}"}, safe="/|:")
    response = await client.get(f"{server.base_url}/Patient?{query}")
    entries = orjson.loads(response.content).get("entry") or [] if response.status_code == 200 else []
    if len(entries) != 1:
        raise RuntimeError(f"Patient {synthea_id}: HTTP {response.status_code}, {len(entries)} matches")
    return str(entries[0]["resource"]["id"])


def episode(index: int, patient_id: str) -> dict[str, Any]:
    """The GP's care relation with a measured patient: an active episode managed by their office."""
    return {
        "resourceType": "EpisodeOfCare",
        "id": f"bench-summary-episode-{index}",
        "status": "active",
        "patient": {"reference": f"Patient/{patient_id}"},
        "managingOrganization": {"reference": f"Organization/{ORG_ID}"},
        "careManager": {"reference": f"Practitioner/{PRACTITIONER_ID}"},
        "period": {"start": "2020-01-01"},
    }


async def give_care(
    client: httpx.AsyncClient, on: Server, creds: Credentials, patients: Sequence[str]
) -> None:
    body = transaction([*care_setting(), *(episode(i, p) for i, p in enumerate(patients))])
    headers = {**creds.system, "Content-Type": FHIR_JSON}
    response = await client.post(f"{on.base_url}/", content=body, headers=headers, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(f"care setting: HTTP {response.status_code}: {response.text[:2000]}")


def summary_url(server: Server, patient_id: str) -> str:
    return f"{server.base_url}/Patient/{patient_id}/$summary"


def check_document(patient_id: str) -> Callable[[httpx.Response], dict[str, Any]]:
    """A 200 answer must be a document Bundle led by the patient's Composition (ValueError if not)."""

    def check(response: httpx.Response) -> dict[str, Any]:
        bundle: dict[str, Any] = orjson.loads(response.content)
        entries = bundle.get("entry") or []
        first = entries[0].get("resource", {}) if entries else {}
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != BUNDLE_TYPE:
            raise ValueError(f"not a document Bundle: {bundle.get('resourceType')} {bundle.get('type')}")
        if first.get("resourceType") != FIRST_ENTRY:
            raise ValueError(f"the first entry is {first.get('resourceType')}, not a Composition")
        if first.get("subject", {}).get("reference") != f"Patient/{patient_id}":
            raise ValueError(f"the Composition's subject is {first.get('subject')}")
        return bundle

    return check


async def inspect(
    client: httpx.AsyncClient, off: Server, on: Server, creds: Credentials, target: Target
) -> Target:
    """One summary of the patient (not timed): its size and sections, and the AuditEvents one secured
    summary adds (the Patient read, one per compartment search, one for Devices found)."""
    response = await client.get(summary_url(off, target.patient_id))
    if response.status_code != 200:
        raise RuntimeError(f"{target.label}: $summary -> HTTP {response.status_code}: {response.text[:1000]}")
    bundle = check_document(target.patient_id)(response)
    sections = {
        str(s.get("title")): len(s.get("entry") or ()) for s in bundle["entry"][0]["resource"]["section"]
    }
    before = await audit_count(client, on, creds)
    secured = await client.get(summary_url(on, target.patient_id), headers=creds.gp)
    if secured.status_code != 200:
        raise RuntimeError(
            f"{target.label}: secured $summary -> HTTP {secured.status_code}: {secured.text[:1000]}"
        )
    added = await audit_count(client, on, creds) - before
    return Target(
        target.label,
        target.bundle,
        target.resources,
        target.patient_id,
        len(bundle["entry"]),
        len(response.content),
        sections,
        added,
    )


# -- phases ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    databases: tuple[str, ...]
    data_dir: Path
    bundles: int | None  # None: all of them
    patients: int  # the fullest ones; the median one comes on top
    requests: int
    warmup: int
    concurrency: int
    rounds: int
    load_concurrency: int
    max_body_bytes: int | None
    time_limit_s: float
    results_dir: Path
    profile: int = 0  # summaries profiled in-process per mode (0: none)


@dataclass(frozen=True)
class Result:
    """One phase: bench.security's figures, and the tail of the latency distribution."""

    phase: PhaseResult
    patient: str  # a Target's label, or "all" for the throughput phase
    concurrency: int
    p90_ms: float
    max_ms: float
    mean_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "concurrency": self.concurrency,
            **asdict(self.phase),
            "p90_ms": self.p90_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        }


def result(
    mode: str,
    patient: str,
    concurrency: int,
    requested: int,
    warmup: Tally,
    parts: Sequence[Tally],
    audit: Any,
) -> Result:
    tally = merged(parts)
    latencies = sorted(tally.latencies_ms)
    mean = sum(latencies) / len(latencies) if latencies else 0.0
    name = "sequential" if concurrency == 1 else f"concurrency {concurrency}"
    return Result(
        summarize(mode, name, requested, warmup, tally, audit),
        patient,
        concurrency,
        round(percentile(latencies, 90), 2),
        round(latencies[-1], 2) if latencies else 0.0,
        round(mean, 2),
    )


@dataclass
class Side:
    """One server of a comparison: its requests' headers and whether they are audited."""

    mode: str
    server: Server
    headers: Mapping[str, str] | None

    @property
    def audited(self) -> bool:
        return self.mode == "on"


async def run_pair(
    sides: Sequence[Side],
    targets: Sequence[Target],
    label: str,
    clients: Sequence[httpx.AsyncClient],
    opts: Options,
    creds: Credentials,
    on: Server,
    deadline: float,
    postgres: str | None,
) -> list[Result]:
    """`targets`' summaries round-robin on each side: a warm-up each, then `opts.rounds` interleaved parts
    (off, on, then on, off, ...), the AuditEvents counted around every part of the audited side."""
    concurrency = len(clients)

    def load(side: Side, count: int, ok_by_patient: Counter[str]) -> Load:
        chosen = [targets[i % len(targets)] for i in range(count)]
        checks = {t.patient_id: check_document(t.patient_id) for t in targets}
        urls = [summary_url(side.server, t.patient_id) for t in chosen]

        def check(response: httpx.Response) -> None:
            patient_id = response.url.path.split("/")[-2]
            checks[patient_id](response)
            ok_by_patient[patient_id] += 1

        return Load(urls, [side.headers] * count, check)

    async def counted(side: Side, count: int) -> tuple[Tally, AuditCheck]:
        ok_by_patient: Counter[str] = Counter()
        before = await audit_count(clients[0], on, creds)
        tally = await drive(
            clients, load(side, count, ok_by_patient), deadline, side.server.process.pid, postgres
        )
        added = await audit_count(clients[0], on, creds) - before
        per = {t.patient_id: t.audit_per_summary for t in targets}
        expected = sum(n * per[p] for p, n in ok_by_patient.items()) if side.audited else 0
        return tally, AuditCheck(added, expected)

    warmups: dict[str, Tally] = {}
    parts: dict[str, list[Tally]] = {s.mode: [] for s in sides}
    audits: dict[str, list[AuditCheck]] = {s.mode: [] for s in sides}
    for side in sides:
        warmups[side.mode], audit = await counted(side, opts.warmup)
        audits[side.mode].append(audit)
    indices = list(range(opts.requests))
    for index in range(opts.rounds):
        for side in sides if index % 2 == 0 else list(reversed(sides)):
            if time.monotonic() >= deadline:
                break
            tally, audit = await counted(side, len(part(indices, index, opts.rounds)))
            parts[side.mode].append(tally)
            audits[side.mode].append(audit)
    results = []
    for side in sides:
        checks = audits[side.mode]
        audit = AuditCheck(sum(c.added for c in checks), sum(c.expected for c in checks))
        r = result(side.mode, label, concurrency, opts.requests, warmups[side.mode], parts[side.mode], audit)
        p = r.phase
        verdict = "ok" if audit.passed else f"MISMATCH: expected {audit.expected}"
        print(
            f"  {label:<10} {side.mode:<3} c={concurrency:<2} {p.requests_per_s:>7.1f} req/s  p50 {p.p50_ms:.1f}"
            f"  p90 {r.p90_ms:.1f}  p99 {p.p99_ms:.1f}  max {r.max_ms:.1f} ms  errors {p.errors}"
            f"  audit +{audit.added} ({verdict})",
            flush=True,
        )
        results.append(r)
    return results


# -- profile (--profile) --------------------------------------------------------------------------------
PROFILE_BASE = "http://bench.profile"
PROFILE_TOP = 30  # functions listed from the cProfile run
REQUEST = "request"  # SQL outside the summary's own reads and searches: authentication, policy, audit
AUDIT_WRITES = "audit writes"  # the audit sink's group commits (beside the requests, not in them)
WRITE = re.compile(r"\s*(WITH\s+\w+\s+AS\s*\(\s*)?(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
SQL_SHOWN = 160  # characters of a statement printed in the list of the slowest (the JSON has all of it)
SLOWEST = 12  # statements listed


@dataclass
class Timings:
    """Inside a server app in this process, one request at a time: the summary's engine calls (wall time),
    and the SQL statements run while each was in progress (count and wall time, from SQLAlchemy's cursor
    events). One request at a time, so a plain attribute says which call a statement belongs to."""

    current: str = REQUEST
    calls: Counter[str] = field(default_factory=Counter)
    call_s: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    statements: Counter[str] = field(default_factory=Counter)
    sql_s: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    # By the statement's beginning (section, SQL): count and seconds, for the slowest ones.
    shapes: Counter[tuple[str, str]] = field(default_factory=Counter)
    shape_s: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    started: dict[int, float] = field(default_factory=dict)

    def before(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self.started[id(cursor)] = time.perf_counter()

    def after(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        self.add(statement, time.perf_counter() - self.started.pop(id(cursor), time.perf_counter()))

    def add(self, statement: str, seconds: float) -> None:
        # A summary only reads: a write is the audit's group commit, which runs beside the request.
        key = AUDIT_WRITES if WRITE.match(statement) else self.current
        self.statements[key] += 1
        self.sql_s[key] += seconds
        shape = (key, " ".join(statement.split()))  # bound parameters: the same text every time
        self.shapes[shape] += 1
        self.shape_s[shape] += seconds

    def reset(self) -> None:
        for counter in (self.calls, self.call_s, self.statements, self.sql_s, self.shapes, self.shape_s):
            counter.clear()


def instrument(app: FastAPI, timings: Timings) -> Callable[[], None]:
    """Count and time the app's SQL, and time its engine's read and search calls by resource type.

    Statements run through app.store.driver_sql (hot reads and the policy's decisions, on the DBAPI cursor
    directly) fire no SQLAlchemy events: DriverStatement.all is wrapped for as long as the returned
    function has not been called (it restores it)."""
    driver_all = DriverStatement.all

    async def counted_all(self: DriverStatement, conn: Any, params: Any) -> Any:
        started = time.perf_counter()
        try:
            return await driver_all(self, conn, params)
        finally:
            timings.add(self.compiled(conn.dialect).sql, time.perf_counter() - started)

    setattr(DriverStatement, "all", counted_all)  # noqa: B010  (mypy: a method is not assignable)
    database = app.state.database
    for engine in {database.engine.sync_engine, database.write_engine.sync_engine}:
        event.listen(engine, "before_cursor_execute", timings.before)
        event.listen(engine, "after_cursor_execute", timings.after)
    engine = app.state.engine
    for name in ("read", "search"):
        original = getattr(engine, name)

        def timed(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            async def call() -> Any:
                key = f"{_name} {args[1]}"  # (ctx, resource type, ...)
                timings.current = key
                started = time.perf_counter()
                try:
                    return await _original(*args, **kwargs)
                finally:
                    timings.calls[key] += 1
                    timings.call_s[key] += time.perf_counter() - started
                    timings.current = REQUEST

            return call()

        setattr(engine, name, timed)
    return lambda: setattr(DriverStatement, "all", driver_all)


def profile_settings(url: str, mode: str, key_file: Path, limits: Mapping[str, str]) -> Settings:
    values: dict[str, Any] = {"database_url": url, "base_url": PROFILE_BASE, "log_level": "WARNING"}
    if mode == "off":
        values["auth_mode"] = "off"
    else:
        values |= {"auth_mode": "jwt", "auth_dev_issuer": True, "auth_dev_key_file": str(key_file)}
        values["auth_audience"] = dev_issuer_env(key_file)["AUTH_AUDIENCE"]
    if "MAX_BODY_BYTES" in limits:
        values["max_body_bytes"] = int(limits["MAX_BODY_BYTES"])
    return Settings(**values)


async def profile(
    url: str,
    mode: str,
    key_file: Path,
    limits: Mapping[str, str],
    headers: Mapping[str, str] | None,
    target: Target,
    count: int,
) -> dict[str, Any]:
    """`count` summaries of `target` in this process, timed inside, then `count` more under cProfile."""
    app = create_app(profile_settings(url, mode, key_file, limits))
    timings = Timings()
    restore = instrument(app, timings)
    check = check_document(target.patient_id)
    path = f"/Patient/{target.patient_id}/$summary"
    profiler = cProfile.Profile()
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=PROFILE_BASE, headers=dict(headers or {})
            ) as client,
        ):

            async def one() -> float:
                started = time.perf_counter()
                response = await client.get(path)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"profile {mode}: HTTP {response.status_code}: {response.text[:500]}")
                check(response)
                return elapsed

            for _ in range(max(1, count // 10)):  # warm-up: caches, prepared statements, the token
                await one()
            timings.reset()
            walls = [await one() for _ in range(count)]
            keys = sorted(set(timings.calls) | set(timings.statements), key=lambda k: (k == REQUEST, k))
            per = {
                key: {
                    "ms": round(1000 * timings.call_s[key] / count, 3) if key != REQUEST else None,
                    "statements": round(timings.statements[key] / count, 2),
                    "sql_ms": round(1000 * timings.sql_s[key] / count, 3),
                }
                for key in keys
            }
            slowest = [
                {
                    "call": key,
                    "sql": sql,
                    "per_request": round(timings.shapes[(key, sql)] / count, 2),
                    "ms_per_request": round(1000 * seconds / count, 3),
                }
                for (key, sql), seconds in sorted(timings.shape_s.items(), key=lambda kv: -kv[1])[:SLOWEST]
            ]
            totals = {
                "engine_ms": round(1000 * sum(timings.call_s.values()) / count, 3),
                "statements": round(sum(timings.statements.values()) / count, 2),
                "sql_ms": round(1000 * sum(timings.sql_s.values()) / count, 3),
            }
            profiler.enable()
            for _ in range(count):
                await one()
            profiler.disable()
    finally:
        restore()
    # Cumulative time of Helsebro's functions on the event loop's thread (a coroutine's time while it
    # is suspended is not counted; on SQLite the database works on aiosqlite's thread, not seen here).
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats("/app/", PROFILE_TOP)
    walls.sort()
    return {
        "mode": mode,
        "patient": target.label,
        "requests": count,
        "wall_ms": {
            "mean": round(1000 * sum(walls) / len(walls), 2),
            "p50": round(1000 * percentile(walls, 50), 2),
            "p99": round(1000 * percentile(walls, 99), 2),
        },
        "calls": per,
        **totals,
        "slowest_sql": slowest,
        "cprofile": out.getvalue(),
    }


def format_profile(p: dict[str, Any]) -> str:
    wall = p["wall_ms"]
    lines = [
        f"\nprofile {p['mode']}, {p['patient']}, {p['requests']} summaries in-process (ASGI, one at a time): "
        f"mean {wall['mean']:.1f} ms, p50 {wall['p50']:.1f}, p99 {wall['p99']:.1f}; engine calls "
        f"{p['engine_ms']:.1f} ms, {p['statements']:.1f} SQL statements, {p['sql_ms']:.1f} ms in SQL",
        f"{'call':<28} {'ms':>8} {'statements':>10} {'sql ms':>8}",
    ]
    for key, v in p["calls"].items():
        lines.append(f"{key:<28} {fmt_num(v['ms']):>8} {v['statements']:>10.2f} {v['sql_ms']:>8.2f}")
    lines.append("slowest statements (ms per request, times per request, the call, the SQL's beginning):")
    for q in p["slowest_sql"]:
        sql = q["sql"][:SQL_SHOWN]
        lines.append(f"  {q['ms_per_request']:>7.2f} {q['per_request']:>5.2f}x  {q['call']:<26} {sql}")
    return "\n".join(lines)


# -- one database ---------------------------------------------------------------------------------------
def selected_bundles(bundles: Sequence[BundleFile], limit: int | None) -> list[BundleFile]:
    """All bundles, or the reference bundles and `limit` minus those patient bundles spread over the sizes
    (so that a short run still has full and median histories); in load_bundles' posting order."""
    if limit is None:
        return list(bundles)
    reference = [b for b in bundles if b.stage < 2]
    patients = [b for b in bundles if b.stage == 2]
    return reference + spread(patients, max(1, limit - len(reference)))


async def bench_database(
    kind: str, opts: Options, bundles: Sequence[BundleFile], deadline: float
) -> dict[str, Any]:
    resources = sum(b.entries for b in bundles)
    print(
        f"\n== {kind}: {len(bundles)} bundles, {resources:,} resources; $summary of the {opts.patients} "
        f"fullest patients and the median one, {opts.requests} sequential requests each per server in "
        f"{opts.rounds} rounds, then {opts.requests} at concurrency {opts.concurrency} ==",
        flush=True,
    )
    results: list[Result] = []
    targets: list[Target] = []
    profiles: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-") as tmp:
        workdir = Path(tmp)
        key_file = workdir / "dev-key.json"
        load_or_create_key(key_file)  # before the servers start: they read it at start-up
        creds = credentials(key_file, 0, int(opts.time_limit_s) + 3600)
        limits = server_env(opts.max_body_bytes, bundles)
        async with fresh_database(kind, workdir) as url:
            await asyncio.to_thread(migrate, url)
            async with AsyncExitStack() as stack:
                code = code_version()
                servers = [
                    start_server("off", "app.main:create_app", url, workdir, {"AUTH_MODE": "off", **limits}),
                    start_server(
                        "on", "app.main:create_app", url, workdir, {**dev_issuer_env(key_file), **limits}
                    ),
                ]
                for server in servers:
                    stack.callback(stop_process, server.process)  # runs last: after the clients close
                off, on = servers
                loaders = await open_clients(
                    stack, opts.load_concurrency, timeout_s=opts.time_limit_s, keep_alive=False
                )
                clients = await open_clients(stack, max(opts.concurrency, 1))
                for server in servers:
                    await wait_ready(clients[0], server, "/metadata", 200)
                await check_modes(clients[0], off, on)
                # The engine's load (as bench.ingest without --auth): the access facts are kept all the same.
                loaded, _ = await ingest(off, loaders, bundles, deadline)
                print(
                    f"  loaded {loaded.resources_ok:,}/{loaded.resources:,} resources in {loaded.wall_s:.1f} s: "
                    f"{loaded.resources_per_s:.0f}/s, {loaded.failed} failed bundles",
                    flush=True,
                )
                if loaded.failed or loaded.truncated:
                    raise RuntimeError(f"the load failed: {loaded.failure_samples}")
                chosen = choose(bundles, opts.patients)
                for label, bundle in chosen:
                    pid = await server_id(clients[0], off, patient_in(bundle))
                    targets.append(Target(label, bundle.name, bundle.entries, pid))
                await give_care(clients[0], on, creds, [t.patient_id for t in targets])
                settle_s = await settle(url)
                targets = [await inspect(clients[0], off, on, creds, t) for t in targets]
                for t in targets:
                    print(
                        f"  {t.label:<10} Patient/{t.patient_id}: {t.resources:,} resources loaded, summary of "
                        f"{t.document_entries} entries ({t.document_bytes / 1024:.0f} kB), "
                        f"{t.audit_per_summary} AuditEvents per secured summary",
                        flush=True,
                    )
                postgres = postgres_database(url)
                sides = [Side("off", off, None), Side("on", on, creds.gp)]
                for t in targets:
                    if time.monotonic() >= deadline:
                        print(f"  {t.label}: skipped, time limit reached", flush=True)
                        continue
                    results += await run_pair(
                        sides, [t], t.label, clients[:1], opts, creds, on, deadline, postgres
                    )
                if opts.concurrency > 1 and time.monotonic() < deadline:
                    results += await run_pair(
                        sides,
                        targets,
                        "all",
                        clients[: opts.concurrency],
                        opts,
                        creds,
                        on,
                        deadline,
                        postgres,
                    )
                for mode, headers in (("off", None), ("on", creds.gp)):
                    if opts.profile and time.monotonic() < deadline:
                        profiled = await profile(
                            url, mode, key_file, limits, headers, targets[0], opts.profile
                        )
                        print(format_profile(profiled), flush=True)
                        profiles.append(profiled)
            server_logs = {s.name: log_tail(s.log_path, 40) for s in servers}
    return {
        "database": kind,
        "database_url": url,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "bundles": opts.bundles,
            "patients": opts.patients,
            "requests": opts.requests,
            "warmup": opts.warmup,
            "concurrency": opts.concurrency,
            "rounds": opts.rounds,
            "load_concurrency": opts.load_concurrency,
            "profile": opts.profile,
            "server_env": limits,
        },
        "code": code,
        "host": host_info(),
        "data": {"dir": str(opts.data_dir), "bundles": len(bundles), "resources": resources},
        "load": asdict(loaded),
        "settle_s": round(settle_s, 2),
        "patients": [asdict(t) for t in targets],
        "phases": [r.as_json() for r in results],
        "profiles": profiles,
        "target_p99_ms": TARGET_P99_MS,
        "server_logs": server_logs,
    }


# -- reporting ------------------------------------------------------------------------------------------
def headline(report: dict[str, Any]) -> dict[str, Any] | None:
    """The issue's figure: the fullest patient's sequential summaries with security on."""
    return next(
        (
            p
            for p in report["phases"]
            if p["patient"] == "fullest 1" and p["mode"] == "on" and p["concurrency"] == 1
        ),
        None,
    )


def format_report(report: dict[str, Any]) -> str:
    load = report["load"]
    lines = [
        f"\n{report['database']} ({report['database_url']}), code {code_label(report['code'])}",
        f"load: {load['ok']}/{load['bundles']} bundles, {load['resources_ok']:,} resources in "
        f"{load['wall_s']:.1f} s ({load['resources_per_s']:.0f}/s, server CPU {fmt_pct(load['server_cpu_pct'])}, "
        f"other {fmt_pct(load['other_cpu_pct'])}); settle {report['settle_s']:.1f} s",
    ]
    header = (
        f"{'patient':<10} {'id':<38} {'resources':>9} {'entries':>7} {'kB':>6} {'audit/req':>9}  sections"
    )
    lines += [header, "-" * len(header)]
    for t in report["patients"]:
        sections = ", ".join(f"{title.split()[0]} {n}" for title, n in t["sections"].items())
        lines.append(
            f"{t['label']:<10} {t['patient_id']:<38} {t['resources']:>9,} {t['document_entries']:>7} "
            f"{t['document_bytes'] / 1024:>6.0f} {t['audit_per_summary']:>9}  {sections}"
        )
    header = (
        f"{'patient':<10} {'mode':<4} {'conc':>4} {'ok/sent':>9} {'err':>4} {'req/s':>7} {'p50 ms':>7} "
        f"{'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'server cpu':>10} {'other cpu':>9} {'srv ms/req':>10} "
        f"{'db ms/req':>9} {'audit':>8}"
    )
    lines += ["", header, "-" * len(header)]
    for p in report["phases"]:
        flag = "  (time limit)" if p["truncated"] else ""
        audit = p["audit"]
        audit_text = f"+{audit['added']}" + ("" if audit["passed"] else f"!={audit['expected']}")
        lines.append(
            f"{p['patient']:<10} {p['mode']:<4} {p['concurrency']:>4} {p['ok']:>4}/{p['sent']:<4} "
            f"{p['errors']:>4} {p['requests_per_s']:>7.1f} {p['p50_ms']:>7.1f} {p['p90_ms']:>7.1f} "
            f"{p['p99_ms']:>7.1f} {p['max_ms']:>7.1f} {fmt_pct(p['server_cpu_pct']):>10} "
            f"{fmt_pct(p['other_cpu_pct']):>9} {fmt_num(p['server_cpu_ms_per_request']):>10} "
            f"{fmt_num(p['db_cpu_ms_per_request']):>9} {audit_text:>8}{flag}"
        )
    best = headline(report)
    if best is not None:
        verdict = "met" if best["p99_ms"] < report["target_p99_ms"] else "MISSED"
        lines.append(
            f"target: p99 < {report['target_p99_ms']:.0f} ms for the fullest patient, security on: "
            f"{best['p99_ms']:.1f} ms, {verdict}"
        )
    for profiled in report["profiles"]:
        lines.append(format_profile(profiled))
        lines.append(profiled["cprofile"].strip())
    for p in report["phases"]:
        name = f"{p['patient']} {p['mode']} c={p['concurrency']}"
        if not p["audit"]["passed"]:
            lines.append(
                f"!!! AUDIT MISMATCH {name}: {p['audit']['added']} AuditEvents added, expected "
                f"{p['audit']['expected']}"
            )
        if report["database"] == "sqlite" and (p["other_cpu_pct"] or 0) > NOISE_CPU_PCT:
            lines.append(f"! {name}: other processes used {p['other_cpu_pct']:.0f}% CPU: noisy")
        if p["errors"] or p["warmup_errors"]:
            lines.append(f"! {name}: {p['error_kinds']} (+{p['warmup_errors']} in warm-up)")
            lines.extend(f"    {sample}" for sample in p["error_samples"])
    for name, log in report["server_logs"].items():
        shown = [line for line in log.splitlines() if "AUTH_MODE=off" not in line and line.strip()]
        if shown:
            lines.append(f"! {name} server log (last lines):")
            lines.extend(f"    {line[:300]}" for line in shown)
    return "\n".join(lines)


def failed(report: dict[str, Any], opts: Options) -> bool:
    phases = report["phases"]
    expected = 2 * len(report["patients"]) + (2 if opts.concurrency > 1 else 0)
    return len(phases) < expected or any(
        p["errors"] or p["warmup_errors"] or p["truncated"] or not p["audit"]["passed"] for p in phases
    )


# -- entry point ----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql (default: both)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"directory of Synthea *.json.bz2 bundles (default: ${DATA_DIR_ENV}, else ../shared/data/synthea)",
    )
    parser.add_argument(
        "--bundles",
        type=int,
        default=None,
        help="load only this many bundles: the reference bundles and patient bundles spread over the sizes "
        "(default: all)",
    )
    parser.add_argument(
        "--patients",
        type=int,
        default=2,
        help="the fullest patients measured, besides the median one (default 2)",
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="measured requests per patient and server (default 300)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured requests before each phase (default 10%% of --requests)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="summaries in flight in the throughput phase; 1 skips it (default 4)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved parts each off/on comparison runs in (default 2)"
    )
    parser.add_argument(
        "--load-concurrency", type=int, default=2, help="bundles in flight while loading (default 2)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help="the servers' MAX_BODY_BYTES (default: raised to fit the largest bundle; 0 keeps their own)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=1800.0, help="seconds for the whole run (default 1800)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        help="after the phases, time this many summaries of the fullest patient inside an app in this "
        "process per mode (engine calls, SQL statements), then as many under cProfile (default 0: none)",
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    unknown = [d for d in databases if d not in DATABASES]
    if unknown or not databases:
        parser.error(f"--databases takes {', '.join(DATABASES)}; got {args.databases!r}")
    warmup = max(1, args.requests // 10) if args.warmup is None else args.warmup
    if min(args.requests, args.concurrency, args.rounds, args.patients, args.load_concurrency) < 1:
        parser.error("--requests, --concurrency, --rounds, --patients and --load-concurrency must be >= 1")
    if warmup < 0 or args.profile < 0 or args.time_limit <= 0 or args.rounds > args.requests:
        parser.error("--warmup must be >= 0, --time-limit > 0, --rounds at most --requests")
    if args.bundles is not None and args.bundles < 3:
        parser.error("--bundles must be at least 3: the two reference bundles and a patient")
    data_dir: Path = args.data_dir if args.data_dir is not None else default_data_dir()
    if not data_dir.is_dir() or not any(data_dir.glob("*.json.bz2")):
        parser.exit(
            2,
            f"{parser.prog}: no Synthea data: {data_dir} is missing or holds no *.json.bz2 bundles.\n"
            f"Point --data-dir or ${DATA_DIR_ENV} at the directory of the Synthea transaction bundles.\n",
        )
    return Options(
        databases,
        data_dir,
        args.bundles,
        args.patients,
        args.requests,
        warmup,
        args.concurrency,
        args.rounds,
        args.load_concurrency,
        args.max_body_bytes,
        args.time_limit,
        args.results_dir,
        args.profile,
    )


async def run(opts: Options) -> int:
    deadline = time.monotonic() + opts.time_limit_s
    any_failed = False
    # Backstop beyond the phases' own deadline: reading the data, migrations, settling and shutdown too.
    async with asyncio.timeout(opts.time_limit_s + 300):
        print(f"reading {opts.data_dir} ...", flush=True)
        bundles = selected_bundles(await asyncio.to_thread(load_bundles, opts.data_dir), opts.bundles)
        for kind in opts.databases:
            if time.monotonic() >= deadline:
                print(f"\n== {kind}: skipped, time limit reached ==", flush=True)
                any_failed = True
                continue
            report = await bench_database(kind, opts, bundles, deadline)
            print(format_report(report))
            print(f"-> {write_json_report(report, opts.results_dir, 'summary')}", flush=True)
            any_failed |= failed(report, opts)
    return 1 if any_failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_main(lambda: run(opts))


if __name__ == "__main__":
    sys.exit(main())
