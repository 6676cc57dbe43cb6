"""Ingestion + search benchmark: the Synthea sample (bz2 transaction bundles) into Helsebro, then searches.

    python -m bench.ingest [--databases sqlite,postgresql] [--data-dir DIR] [--concurrency 2]
                           [--search-requests 300] [--time-limit 1500] [--auth] [--workers N]

Per database: a fresh database, `alembic upgrade head`, Helsebro as a uvicorn subprocess on 127.0.0.1, then
every bundle is posted to `POST /` (the organisation and practitioner bundles first, since patient bundles
reference them conditionally), and a fixed search mix built from the loaded data runs on the same server.
With --auth the server runs as deployed (authentication, access policy, audit) and system clients load and
search; --workers N serves with N processes. Prints tables and writes
bench/results/ingest[-auth][-w<N>]-<database>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import orjson

from app.config import Settings
from bench.common import (
    DATABASES,
    DEFAULT_RESULTS_DIR,
    FHIR_JSON,
    REPO_ROOT,
    Server,
    Tally,
    asyncpg_dsn,
    code_label,
    code_version,
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
    spread,
    start_server,
    stop_process,
    system_client,
    tree_cpu_s,
    wait_ready,
    write_json_report,
)
from bench.crud import Load, PhaseResult, drive, summarize

DATA_DIR_ENV = "HELSEBRO_SYNTHEA_DIR"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "synthea"
# Synthea writes the organisations/locations and the practitioners into bundles of their own; patient
# bundles point at them with conditional references (Organization?identifier=...), so they load first.
REFERENCE_BUNDLES = ("hospitalInformation", "practitionerInformation")
# A loader has no use for the created resources echoed back; the response only has to say what happened.
INGEST_HEADERS = {"Content-Type": FHIR_JSON, "Prefer": "return=minimal"}
IN_FLIGHT_GRACE_S = 60.0  # how long a bundle already sent may still run after the time limit
PROGRESS_EVERY_S = 15.0
MAX_FAILURE_SAMPLES = 5
HAPI_PER_VCPU = 280.0  # the search issue's reference: HAPI FHIR ingests ~2,200 resources/s on 8 vCPU
SYNTHEA_SYSTEM = "https://github.com/synthetichealth/synthea"
LOINC = "http://loinc.org"
DATE_RANGE = (("date", "ge2015-01-01"), ("date", "lt2025-01-01"))
SAMPLE_PATIENTS = 20  # distinct patients (and values) each search kind cycles through
SEARCH_KINDS = ("identifier", "name", "observation", "condition+include", "everything")
SLOW_SEARCH_P50_MS = 100.0  # a search kind slower than this at the median is flagged for an EXPLAIN
NOISE_CPU_PCT = 20  # on SQLite nothing but the server should use CPU: above this, someone else's work did


# -- the data -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BundleFile:
    name: str
    body: bytes  # decompressed JSON, as sent
    entries: int
    stage: int  # 0, 1: the reference bundles, in REFERENCE_BUNDLES order; 2: patients
    # Generated data (bench.pregnancy): the body is built when the bundle is sent, so that a large data
    # set is never held in memory at once (`body` is then empty).
    build: Callable[[], bytes] | None = None

    def payload(self) -> bytes:
        return self.build() if self.build is not None else self.body


def _read_bundle(path: Path) -> BundleFile:
    body = bz2.decompress(path.read_bytes())
    parsed = orjson.loads(body)
    stage = next((i for i, marker in enumerate(REFERENCE_BUNDLES) if marker in path.name), 2)
    return BundleFile(path.name, body, len(parsed.get("entry") or ()), stage)


def load_bundles(data_dir: Path) -> list[BundleFile]:
    """All bundles, decompressed up front (decompression is client work, never timed), in posting order.

    Patient bundles go largest first: the last few then are small, so the concurrent slots stay busy
    until the end instead of one big transaction running alone.
    """
    paths = sorted(data_dir.glob("*.json.bz2"))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # bz2 releases the GIL
        bundles = list(pool.map(_read_bundle, paths))
    return sorted(bundles, key=lambda b: (b.stage, -len(b.body) if b.stage == 2 else 0, b.name))


# -- ingestion ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BundleOutcome:
    name: str
    entries: int
    size_bytes: int
    status: int | None  # None: no response (transport error or time limit)
    latency_ms: float
    error: str  # empty when the bundle was stored completely


@dataclass(frozen=True)
class IngestResult:
    bundles: int
    sent: int
    ok: int
    failed: int
    resources: int  # entries in all bundles of the data set
    resources_ok: int  # entries of the bundles that were stored
    wall_s: float
    resources_per_s: float
    bundles_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_pct: float | None  # of one core, the uvicorn process
    client_cpu_pct: float
    other_cpu_pct: float | None  # of one core: PostgreSQL's backends, and anything else on the host
    server_cpu_ms_per_resource: float | None
    hapi_per_core_ratio: float  # resources/s ÷ (280/vCPU × this host's cores)
    failure_samples: list[str]
    truncated: bool  # the time limit stopped the load


def _check_response(bundle: BundleFile, response: httpx.Response) -> str:
    """Why a 200 response still means the bundle was not stored completely ("" if it was)."""
    entries = orjson.loads(response.content).get("entry") or []
    if len(entries) != bundle.entries:
        return f"{len(entries)} response entries for {bundle.entries} request entries"
    failed = [e for e in entries if not str(e.get("response", {}).get("status", "")).startswith("2")]
    if not failed:
        return ""
    # A batch (the reference bundles) answers 200 even when entries fail: each entry has its own status.
    first = failed[0]["response"]
    outcome = orjson.dumps(first.get("outcome")).decode()
    return f"{len(failed)} entries failed; first: {first.get('status')} {outcome}"


async def post_bundle(
    client: httpx.AsyncClient, base_url: str, bundle: BundleFile, deadline: float
) -> BundleOutcome:
    body = bundle.payload()
    started = time.perf_counter()
    status: int | None = None
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic()) + IN_FLIGHT_GRACE_S):
            response = await client.post(f"{base_url}/", content=body, headers=INGEST_HEADERS)
        status = response.status_code
        error = f"HTTP {status}: {response.text}" if status != 200 else _check_response(bundle, response)
    except TimeoutError:
        error = "no response before the time limit"
    except (httpx.HTTPError, ValueError) as exc:  # ValueError: a 200 whose body is not a Bundle
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = (time.perf_counter() - started) * 1000
    return BundleOutcome(bundle.name, bundle.entries, len(body), status, latency_ms, error)


async def ingest(
    server: Server, clients: Sequence[httpx.AsyncClient], bundles: Sequence[BundleFile], deadline: float
) -> tuple[IngestResult, list[BundleOutcome]]:
    """Post every bundle, stage by stage (a stage starts when the previous one is done), and time it."""
    outcomes: list[BundleOutcome] = []
    samples: list[str] = []
    pid = server.process.pid
    total = sum(b.entries for b in bundles)
    server_cpu, host_busy, client_cpu = tree_cpu_s(pid), host_busy_s(), time.process_time()
    started = time.perf_counter()
    last_report = started

    async def worker(client: httpx.AsyncClient, queue: list[BundleFile]) -> None:
        nonlocal last_report
        while queue and time.monotonic() < deadline:
            outcome = await post_bundle(client, server.base_url, queue.pop(0), deadline)
            outcomes.append(outcome)
            if outcome.error and len(samples) < MAX_FAILURE_SAMPLES:
                samples.append(f"{outcome.name}: {outcome.error[:400]}")
                print(f"  ! {samples[-1]}", flush=True)
            now = time.perf_counter()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                stored = sum(o.entries for o in outcomes if not o.error)
                print(
                    f"  [{len(outcomes):>3}/{len(bundles)}] {stored:>6}/{total} resources, "
                    f"{stored / (now - started):.0f}/s",
                    flush=True,
                )

    for stage in sorted({b.stage for b in bundles}):
        queue = [b for b in bundles if b.stage == stage]
        await asyncio.gather(*(worker(client, queue) for client in clients))
    elapsed = time.perf_counter() - started
    client_cpu_s = time.process_time() - client_cpu
    server_cpu_s = delta(server_cpu, tree_cpu_s(pid))
    busy_s = delta(host_busy, host_busy_s())
    other_s = (
        None if busy_s is None or server_cpu_s is None else max(0.0, busy_s - server_cpu_s - client_cpu_s)
    )

    latencies = sorted(o.latency_ms for o in outcomes)
    ok = [o for o in outcomes if not o.error]
    resources_ok = sum(o.entries for o in ok)
    rate = resources_ok / elapsed
    result = IngestResult(
        bundles=len(bundles),
        sent=len(outcomes),
        ok=len(ok),
        failed=len(outcomes) - len(ok),
        resources=total,
        resources_ok=resources_ok,
        wall_s=round(elapsed, 2),
        resources_per_s=round(rate, 1),
        bundles_per_s=round(len(ok) / elapsed, 3),
        p50_ms=round(percentile(latencies, 50), 1),
        p99_ms=round(percentile(latencies, 99), 1),
        max_ms=round(latencies[-1], 1) if latencies else 0.0,
        server_cpu_pct=cpu_pct(server_cpu_s, elapsed),
        client_cpu_pct=round(100 * client_cpu_s / elapsed, 1),
        other_cpu_pct=cpu_pct(other_s, elapsed),
        server_cpu_ms_per_resource=(
            None if server_cpu_s is None or not resources_ok else round(1000 * server_cpu_s / resources_ok, 3)
        ),
        hapi_per_core_ratio=round(rate / (HAPI_PER_VCPU * (os.cpu_count() or 1)), 3),
        failure_samples=samples,
        truncated=len(outcomes) < len(bundles),
    )
    return result, outcomes


async def database_size(database_url: str) -> int:
    if database_url.startswith("postgresql"):
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()
    path = Path(database_url.split(":///", 1)[1])
    return sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*"))  # the file, its WAL and SHM


# -- the search mix -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    path: str  # with the query string
    expect_id: str | None = None  # the Patient an identifier search must find


@dataclass(frozen=True)
class SearchPlan:
    kinds: dict[str, list[Query]]


def _url(path: str, params: Sequence[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(params, safe='/|:')}"


async def _get_json(client: httpx.AsyncClient, base_url: str, path: str) -> dict[str, Any]:
    response = await client.get(f"{base_url}{path}", timeout=120.0)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} -> HTTP {response.status_code}: {response.text[:400]}")
    body: dict[str, Any] = orjson.loads(response.content)
    return body


def _matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry") or []
        if e.get("search", {}).get("mode", "match") == "match" and "resource" in e
    ]


async def build_plan(client: httpx.AsyncClient, base_url: str) -> SearchPlan:
    """Real values from the loaded data: ids, identifiers, family names, and per patient a LOINC code it has
    Observations of in the date range. Not timed. Every kind must end up with queries."""
    patients = _matches(await _get_json(client, base_url, "/Patient?_count=1000"))
    patients.sort(key=lambda p: str(p["id"]))
    sample = spread(patients, SAMPLE_PATIENTS)
    kinds: dict[str, list[Query]] = {kind: [] for kind in SEARCH_KINDS}
    for patient in sample:
        pid = str(patient["id"])
        identifiers = [i for i in patient.get("identifier") or [] if i.get("system") and i.get("value")]
        identifiers.sort(key=lambda i: i["system"] != SYNTHEA_SYSTEM)  # Synthea's own id: unique per patient
        if identifiers:
            token = f"{identifiers[0]['system']}|{identifiers[0]['value']}"
            kinds["identifier"].append(Query(_url("/Patient", [("identifier", token)]), pid))
        family = next((n.get("family") for n in patient.get("name") or [] if n.get("family")), None)
        if family and len(family) >= 3:
            kinds["name"].append(Query(_url("/Patient", [("name", family[:3])])))
        kinds["everything"].append(Query(f"/Patient/{pid}/$everything"))
    # Observations and Conditions: scan the patients in sample order first, then the rest, until enough.
    ordered = sample + [p for p in patients if p not in sample]
    for patient in ordered:
        pid = str(patient["id"])
        subject = ("subject", f"Patient/{pid}")
        if len(kinds["observation"]) < SAMPLE_PATIENTS:
            observations = _matches(
                await _get_json(
                    client, base_url, _url("/Observation", [subject, *DATE_RANGE, ("_count", "1000")])
                )
            )
            codes = Counter(
                c["code"]
                for o in observations
                for c in o.get("code", {}).get("coding") or []
                if c.get("system") == LOINC and c.get("code")
            )
            if codes:
                code = codes.most_common(1)[0][0]  # the most frequent: several results, not just one
                params = [subject, ("code", f"{LOINC}|{code}"), *DATE_RANGE]
                kinds["observation"].append(Query(_url("/Observation", params)))
        if len(kinds["condition+include"]) < SAMPLE_PATIENTS:
            conditions = _matches(
                await _get_json(client, base_url, _url("/Condition", [subject, ("_count", "1")]))
            )
            if conditions:
                params = [subject, ("_include", "Condition:subject")]
                kinds["condition+include"].append(Query(_url("/Condition", params)))
    empty = [kind for kind, queries in kinds.items() if not queries]
    if empty:
        raise RuntimeError(f"no search values found in the loaded data for: {', '.join(empty)}")
    return SearchPlan(kinds)


@dataclass
class EntryStats:
    responses: int = 0
    entries: int = 0
    matches: int = 0
    included: int = 0


def search_load(base_url: str, kind: str, queries: Sequence[Query], count: int, stats: EntryStats) -> Load:
    urls = [f"{base_url}{queries[i % len(queries)].path}" for i in range(count)]

    def check(index: int, response: httpx.Response) -> None:
        """Raising ValueError makes the response an error: an empty result must never pass as fast."""
        query = queries[index % len(queries)]
        entries = orjson.loads(response.content).get("entry") or []
        modes = Counter(e.get("search", {}).get("mode", "match") for e in entries)
        stats.responses += 1
        stats.entries += len(entries)
        stats.matches += modes["match"]
        stats.included += modes["include"]
        if not modes["match"]:
            raise ValueError(f"no match: {query.path}")
        if kind == "condition+include" and not modes["include"]:
            raise ValueError(f"no _include entry: {query.path}")
        if query.expect_id is not None:
            ids = {e.get("resource", {}).get("id") for e in entries}
            if query.expect_id not in ids:
                raise ValueError(f"Patient/{query.expect_id} not found: {query.path}")

    return Load("GET", urls, None, 200, check)


@dataclass(frozen=True)
class KindResult:
    kind: str
    result: PhaseResult
    avg_entries: float  # per successful response, matches and includes
    avg_matches: float
    avg_included: float

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            **asdict(self.result),
            "avg_entries": self.avg_entries,
            "avg_matches": self.avg_matches,
            "avg_included": self.avg_included,
        }


async def run_searches(
    server: Server, clients: Sequence[httpx.AsyncClient], plan: SearchPlan, opts: Options, deadline: float
) -> tuple[list[KindResult], dict[str, Any]]:
    """Each kind on its own (warm-up, then the measured run), so every kind's figures are its own."""
    pid = server.process.pid
    results: list[KindResult] = []
    tallies: list[Tally] = []
    for kind, queries in plan.kinds.items():
        if time.monotonic() >= deadline:
            print(f"  {kind:<17} skipped: time limit reached", flush=True)
            continue
        warmup = await drive(
            clients,
            search_load(server.base_url, kind, queries, opts.search_warmup, EntryStats()),
            deadline,
            pid,
        )
        stats = EntryStats()
        load = search_load(server.base_url, kind, queries, opts.search_requests, stats)
        tally = await drive(clients, load, deadline, pid)
        tallies.append(tally)
        phase = summarize("helsebro", kind, opts.search_requests, tally, sum(warmup.errors.values()))
        ok = max(1, stats.responses)
        result = KindResult(
            kind,
            phase,
            round(stats.entries / ok, 1),
            round(stats.matches / ok, 1),
            round(stats.included / ok, 1),
        )
        results.append(result)
        print(
            f"  {kind:<17} {phase.requests_per_s:>7.1f} req/s  p50 {phase.p50_ms:.1f} ms  p99 {phase.p99_ms:.1f} ms"
            f"  errors {phase.errors}  entries {result.avg_entries:.1f}",
            flush=True,
        )
    latencies = sorted(ms for t in tallies for ms in t.latencies_ms)
    elapsed = sum(t.elapsed_s for t in tallies) or 1e-9
    overall = {
        "requests": sum(t.sent for t in tallies),
        "ok": sum(t.ok for t in tallies),
        "errors": sum(sum(t.errors.values()) for t in tallies),
        "requests_per_s": round(sum(t.ok for t in tallies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "elapsed_s": round(elapsed, 3),
    }
    return results, overall


# -- one database ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    databases: tuple[str, ...]
    data_dir: Path
    concurrency: int
    search_requests: int
    search_concurrency: int
    search_warmup: int
    max_body_bytes: int | None  # None: raise the server's limit to fit the largest bundle if needed
    time_limit_s: float
    results_dir: Path
    auth: bool = False
    workers: int = 1


# With --auth, a system client loads with the scopes an import needs (create and update; search for the
# bundles' conditional references and creates), and another searches with read and search scopes.
INGEST_SCOPES = "system/*.cus"
SEARCH_SCOPES = "system/*.rs"


def security(workdir: Path, opts: Options) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Helsebro's environment, and the headers of the loading and the searching client."""
    if not opts.auth:
        return {"AUTH_MODE": "off"}, {}, {}
    env, ingest_headers = system_client(workdir, "bench-ingest", INGEST_SCOPES, opts.time_limit_s)
    _, search_headers = system_client(workdir, "bench-search", SEARCH_SCOPES, opts.time_limit_s)
    return env, ingest_headers, search_headers


def server_env(max_body_bytes: int | None, bundles: Sequence[BundleFile]) -> dict[str, str]:
    """MAX_BODY_BYTES for the server: Synthea's largest patient bundle is ~11 MB, above the 10 MiB default.
    `max_body_bytes`: the option (None: raise the limit if a bundle needs it; 0: the server's own)."""
    if max_body_bytes is not None:
        return {"MAX_BODY_BYTES": str(max_body_bytes)} if max_body_bytes else {}
    largest = max(len(b.body) for b in bundles)
    limit = Settings(_env_file=REPO_ROOT / ".env").max_body_bytes
    if largest <= limit:
        return {}
    raised = -(-largest // 2**20) * 2**20  # the next whole MiB
    print(
        f"note: the largest bundle ({largest:,} bytes) is over the server's MAX_BODY_BYTES ({limit:,}); "
        f"the server runs with MAX_BODY_BYTES={raised} (--max-body-bytes 0 keeps its own limit)",
        flush=True,
    )
    return {"MAX_BODY_BYTES": str(raised)}


async def bench_database(
    kind: str, opts: Options, bundles: Sequence[BundleFile], deadline: float
) -> dict[str, Any]:
    resources = sum(b.entries for b in bundles)
    print(
        f"\n== {kind}: {len(bundles)} bundles, {resources:,} resources, concurrency {opts.concurrency}, "
        f"authentication {'on' if opts.auth else 'off'}, {opts.workers} server process(es); "
        f"search {opts.search_requests} per kind at concurrency {opts.search_concurrency} ==",
        flush=True,
    )
    search: list[KindResult] = []
    overall: dict[str, Any] = {}
    plan = SearchPlan({})
    settle_s: float | None = None
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-") as tmp:
        workdir = Path(tmp)
        env, ingest_headers, search_headers = security(workdir, opts)
        env.update(server_env(opts.max_body_bytes, bundles))
        async with fresh_database(kind, workdir) as url:
            await asyncio.to_thread(migrate, url)
            async with AsyncExitStack() as stack:
                code = code_version()
                server = start_server("helsebro", "app.main:create_app", url, workdir, env, opts.workers)
                stack.callback(stop_process, server.process)  # runs last: after the clients close
                # A big transaction takes seconds: the time limit, not a read timeout, bounds a request.
                # A connection per bundle: with 4 kept connections and 2 processes, a 3:1 split left one
                # process idle and one saturated for the whole load (server CPU 94% instead of 136%, and
                # 570-690 resources/s instead of 940-1,050, whichever code ran).
                ingest_clients = await open_clients(
                    stack, opts.concurrency, timeout_s=opts.time_limit_s, keep_alive=False
                )
                for client in ingest_clients:
                    client.headers.update(ingest_headers)
                await wait_ready(ingest_clients[0], server, "/metadata", 200)
                ingested, outcomes = await ingest(server, ingest_clients, bundles, deadline)
                print(
                    f"  ingested {ingested.resources_ok:,}/{ingested.resources:,} resources in "
                    f"{ingested.wall_s:.1f} s: {ingested.resources_per_s:.0f}/s, {ingested.failed} failed bundles",
                    flush=True,
                )
                if opts.search_requests and time.monotonic() < deadline:
                    settle_s = await settle(url)
                    search_clients = await open_clients(stack, opts.search_concurrency)
                    for client in search_clients:
                        client.headers.update(search_headers)
                    plan = await build_plan(search_clients[0], server.base_url)
                    search, overall = await run_searches(server, search_clients, plan, opts, deadline)
                size = await database_size(url)
            server_log = log_tail(server.log_path, 40)  # stopped by now: at WARNING, any line is worth a look
    return {
        "database": kind,
        "database_url": url,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "concurrency": opts.concurrency,
            "search_requests": opts.search_requests,
            "search_concurrency": opts.search_concurrency,
            "search_warmup": opts.search_warmup,
            "time_limit_s": opts.time_limit_s,
            "auth": opts.auth,
            "workers": opts.workers,
            "server_env": {k: v for k, v in env.items() if "KEY" not in k},
        },
        "code": code,
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "data": {"dir": str(opts.data_dir), "bundles": len(bundles), "resources": resources},
        "ingest": asdict(ingested),
        "bundles": [asdict(o) for o in outcomes],
        "settle_s": None if settle_s is None else round(settle_s, 2),
        "database_bytes": size,
        "search_plan": {k: [q.path for q in queries] for k, queries in plan.kinds.items()},
        "search": [r.as_json() for r in search],
        "search_overall": overall,
        "server_log": server_log,
    }


def failed(report: dict[str, Any], opts: Options) -> bool:
    ingest_result = report["ingest"]
    if ingest_result["failed"] or ingest_result["truncated"]:
        return True
    if not opts.search_requests:
        return False
    kinds = report["search"]
    return len(kinds) < len(SEARCH_KINDS) or any(k["errors"] or k["truncated"] for k in kinds)


# -- reporting ------------------------------------------------------------------------------------------
def format_report(report: dict[str, Any]) -> str:
    i = report["ingest"]
    lines = [
        f"\n{report['database']} ({report['database_url']}), code {code_label(report['code'])}, "
        "ingestion at concurrency "
        f"{report['options']['concurrency']}: {i['ok']}/{i['bundles']} bundles, "
        f"{i['resources_ok']:,}/{i['resources']:,} resources",
    ]
    header = (
        f"{'wall s':>7} {'res/s':>7} {'bundles/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'server cpu':>10} {'other cpu':>9} {'client cpu':>10} {'cpu ms/res':>10} {'÷ HAPI/core':>11}"
    )
    lines += [header, "-" * len(header)]
    lines.append(
        f"{i['wall_s']:>7.1f} {i['resources_per_s']:>7.1f} {i['bundles_per_s']:>9.3f} {i['p50_ms']:>8.0f} "
        f"{i['p99_ms']:>8.0f} {i['max_ms']:>8.0f} {fmt_pct(i['server_cpu_pct']):>10} "
        f"{fmt_pct(i['other_cpu_pct']):>9} {fmt_pct(i['client_cpu_pct']):>10} "
        f"{fmt_num(i['server_cpu_ms_per_resource'], 3):>10} {i['hapi_per_core_ratio']:>11.2f}"
    )
    cores = report["host"]["cpus"] or 1
    lines.append(
        f"reference: HAPI FHIR ≈ {HAPI_PER_VCPU:.0f} resources/s per vCPU × {cores} cores = "
        f"{HAPI_PER_VCPU * cores:.0f}/s on this machine"
    )
    if report["database"] == "sqlite" and (i["other_cpu_pct"] or 0) > NOISE_CPU_PCT:
        lines.append(f"! other processes used {i['other_cpu_pct']:.0f}% CPU during the load: noisy")
    if i["failed"] or i["truncated"]:
        lines.append(f"! {i['failed']} bundles failed, {i['bundles'] - i['sent']} not sent (time limit)")
        lines.extend(f"    {sample}" for sample in i["failure_samples"])
    if report["search"]:
        opts = report["options"]
        lines.append(
            f"\nsearch: {opts['search_requests']} per kind, concurrency {opts['search_concurrency']}, "
            f"warm-up {opts['search_warmup']} per kind (settle {fmt_num(report['settle_s'], 1)} s)"
        )
        header = (
            f"{'kind':<17} {'ok/sent':>9} {'errors':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'entries':>7} {'match':>6} {'incl':>5} {'server cpu':>10} {'cpu ms/req':>10}"
        )
        lines += [header, "-" * len(header)]
        for k in report["search"]:
            flag = "  (time limit)" if k["truncated"] else ""
            lines.append(
                f"{k['kind']:<17} {k['ok']:>4}/{k['sent']:<4} {k['errors']:>6} {k['requests_per_s']:>7.1f} "
                f"{k['p50_ms']:>7.1f} {k['p99_ms']:>7.1f} {k['avg_entries']:>7.1f} {k['avg_matches']:>6.1f} "
                f"{k['avg_included']:>5.1f} {fmt_pct(k['server_cpu_pct']):>10} "
                f"{fmt_num(k['server_cpu_ms_per_request'], 2):>10}{flag}"
            )
        o = report["search_overall"]
        lines.append(
            f"{'overall':<17} {o['ok']:>4}/{o['requests']:<4} {o['errors']:>6} {o['requests_per_s']:>7.1f} "
            f"{o['p50_ms']:>7.1f} {o['p99_ms']:>7.1f}"
        )
        for k in report["search"]:
            if k["p50_ms"] > SLOW_SEARCH_P50_MS:
                lines.append(
                    f"! {k['kind']}: p50 {k['p50_ms']:.0f} ms is over {SLOW_SEARCH_P50_MS:.0f} ms: slow"
                )
            if k["errors"] or k["warmup_errors"]:
                lines.append(f"! {k['kind']}: {k['error_kinds']} (+{k['warmup_errors']} in warm-up)")
                lines.extend(f"    {sample}" for sample in k["error_samples"])
    if report["server_log"].strip():
        lines.append("! server log (last lines):")
        lines.extend(f"    {line[:300]}" for line in report["server_log"].splitlines())
    return "\n".join(lines)


def write_report(report: dict[str, Any], results_dir: Path) -> Path:
    """bench/results/ingest[-auth][-w<workers>]-<database>.json."""
    options = report["options"]
    prefix = "ingest" + ("-auth" if options["auth"] else "")
    prefix += f"-w{options['workers']}" if options["workers"] > 1 else ""
    return write_json_report(report, results_dir, prefix)


# -- entry point ----------------------------------------------------------------------------------------
def default_data_dir() -> Path:
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured) if configured else DEFAULT_DATA_DIR


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
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
        help=f"directory of Synthea *.json.bz2 bundles (default: ${DATA_DIR_ENV}, else {DEFAULT_DATA_DIR})",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="bundles in flight at once (default 2)")
    parser.add_argument(
        "--search-requests",
        type=int,
        default=300,
        help="measured requests per search kind; 0 skips searching",
    )
    parser.add_argument("--search-concurrency", type=int, default=8, help="searches in flight (default 8)")
    parser.add_argument("--search-warmup", type=int, default=30, help="unmeasured searches before each kind")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help="the server's MAX_BODY_BYTES (default: raised to fit the largest bundle when needed; "
        "0 keeps the server's own setting)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=1500.0, help="seconds for the whole run (default 1500)"
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument(
        "--auth",
        action="store_true",
        help=f"authentication, access policy and audit on: a system client loads ({INGEST_SCOPES}) and "
        f"another searches ({SEARCH_SCOPES})",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1; PostgreSQL)")
    args = parser.parse_args(argv)
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    unknown = [d for d in databases if d not in DATABASES]
    if unknown or not databases:
        parser.error(f"--databases takes {', '.join(DATABASES)}; got {args.databases!r}")
    if args.concurrency < 1 or args.search_concurrency < 1 or args.time_limit <= 0:
        parser.error("--concurrency and --search-concurrency must be >= 1, --time-limit > 0")
    if args.search_requests < 0 or args.search_warmup < 0 or (args.max_body_bytes or 0) < 0:
        parser.error("--search-requests, --search-warmup and --max-body-bytes must be >= 0")
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
        args.concurrency,
        args.search_requests,
        args.search_concurrency,
        args.search_warmup,
        args.max_body_bytes,
        args.time_limit,
        args.results_dir,
        args.auth,
        args.workers,
    )


async def run(opts: Options) -> int:
    deadline = time.monotonic() + opts.time_limit_s
    has_failed = False
    # Backstop beyond the load's own deadline: reading the data, migrations, settling and shutdown too.
    async with asyncio.timeout(opts.time_limit_s + 2 * IN_FLIGHT_GRACE_S):
        print(f"reading {opts.data_dir} ...", flush=True)
        started = time.perf_counter()
        bundles = await asyncio.to_thread(load_bundles, opts.data_dir)
        print(
            f"{len(bundles)} bundles, {sum(b.entries for b in bundles):,} resources, "
            f"{sum(len(b.body) for b in bundles) / 2**20:.0f} MiB of JSON, "
            f"decompressed in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        for kind in opts.databases:
            if time.monotonic() >= deadline:
                print(f"\n== {kind}: skipped, time limit reached ==", flush=True)
                has_failed = True
                continue
            report = await bench_database(kind, opts, bundles, deadline)
            print(format_report(report))
            print(f"-> {write_report(report, opts.results_dir)}", flush=True)
            has_failed |= failed(report, opts)
    return 1 if has_failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_main(lambda: run(opts))


if __name__ == "__main__":
    sys.exit(main())
