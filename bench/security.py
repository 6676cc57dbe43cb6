"""Security on the read path: reads/s with authentication + access policy + audit on, against it off.

    python -m bench.security [--databases sqlite,postgresql] [--requests 2000] [--concurrency 16]
                             [--rounds 4] [--patients 200]

Per database: a fresh database, `alembic upgrade head`, and two Helsebro servers on it as uvicorn
subprocesses on 127.0.0.1: `off` (AUTH_MODE=off) and `on` (AUTH_MODE=jwt with the development issuer,
whose key this script creates and signs tokens with). A GP office, its GP (HPR) and their PractitionerRole,
`--patients` patients listed with that GP (a care relation) and 5 Observations each are written through
`on` with a system token. Then measured phases, one at a time so the servers never compete for CPU, each
after a warm-up: the same reads and searches without a token on `off` and with the GP's token on `on`
(every one allowed through the care relation, decided by the policy and audited), and citizens reading
their own Observations on `on`. The phases compared with each other run in `--rounds` interleaved parts
(off, on, on, off, ...), so that a host whose speed drifts over minutes slows both sides alike. Around
each part the AuditEvents are counted: every successful audited request must have added exactly one
("batched is fine, lost is not"). Prints a table and the on ÷ off ratios, and writes
bench/results/security-<database>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from app.resources.no_basis.identifiers import (
    FNR_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    orgnr_check_digit,
    synthetic_fnr,
)
from app.security.devtoken import load_or_create_key, mint_token
from bench.common import (
    DATABASES,
    DEFAULT_RESULTS_DIR,
    FHIR_JSON,
    Server,
    Tally,
    code_version,
    cpu_pct,
    delta,
    dev_issuer_env,
    fmt_num,
    fmt_pct,
    fresh_database,
    host_busy_s,
    log_tail,
    merged,
    migrate,
    open_clients,
    percentile,
    process_cpu_s,
    run_main,
    settle,
    start_server,
    stop_process,
    tree_cpu_s,
    wait_ready,
    write_json_report,
)

MAX_ERRORS = 50  # a phase stops sending after this many errors: a stuck server should not eat the time limit
TARGET_RATIO = 0.7  # reads/s with security on ÷ off (the requirement)
OBSERVATIONS_PER_PATIENT = 5
PATIENTS_PER_BUNDLE = 25
MAX_PATIENTS = 28 * 12 * 60  # distinct synthetic dates of birth (see `patient`)
NOISE_CPU_PCT = 20  # other processes' CPU (percent of one core) above which a SQLite phase is flagged
SEED = 20261122  # the random read order: the same on every run

# -- the care setting (synthetic) -----------------------------------------------------------------------
GP_HPR = "9144900"
ORG_ID, PRACTITIONER_ID, ROLE_ID = "bench-gp-office", "bench-gp", "bench-gp-role"
OBSERVATION_KINDS = (
    ("8867-4", "Heart rate", "/min", 50.0, 40.0),
    ("8310-5", "Body temperature", "Cel", 36.0, 2.0),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 100.0, 60.0),
    ("29463-7", "Body weight", "kg", 50.0, 50.0),
    ("8302-2", "Body height", "cm", 150.0, 45.0),
)
FAMILIES = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen")
GIVEN = ("Ola", "Kari", "Per", "Ingrid", "Lars", "Sigrid", "Nils", "Astrid", "Jon", "Solveig")


def gp_office_orgnr() -> str:
    first_eight = "91234568"
    check = orgnr_check_digit(first_eight)
    assert check is not None, "pick eight digits that have a mod-11 check digit"
    return f"{first_eight}{check}"


GP_ORGNR = gp_office_orgnr()


def patient_id(index: int) -> str:
    return f"bench-pat-{index:05d}"


def observation_id(index: int, kind: int) -> str:
    return f"bench-obs-{index:05d}-{kind}"


def birth_date(index: int) -> tuple[int, int, int]:
    """Day, month and year of birth: distinct for every index below MAX_PATIENTS, so the numbers are too."""
    return 1 + index % 28, 1 + (index // 28) % 12, 1940 + (index // 336) % 60


def patient_fnr(index: int) -> str:
    day, month, year = birth_date(index)
    return synthetic_fnr(day, month, year, 100)  # individual number 100-499: born in the 1900s


def patient(index: int) -> dict[str, Any]:
    fnr = patient_fnr(index)
    day, month, year = birth_date(index)
    return {
        "resourceType": "Patient",
        "id": patient_id(index),
        "identifier": [{"system": FNR_SYSTEM, "value": fnr}],
        "active": True,
        "name": [{"use": "official", "family": FAMILIES[index % 8], "given": [GIVEN[index // 8 % 10]]}],
        "gender": "male" if int(fnr[8]) % 2 else "female",  # the fødselsnummer's rule
        "birthDate": f"{year}-{month:02d}-{day:02d}",
        "generalPractitioner": [{"reference": f"PractitionerRole/{ROLE_ID}"}],  # the care relation
    }


def observation(index: int, kind: int) -> dict[str, Any]:
    code, display, unit, low, span = OBSERVATION_KINDS[kind]
    category = "vital-signs"
    return {
        "resourceType": "Observation",
        "id": observation_id(index, kind),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id(index)}"},
        "effectiveDateTime": f"2025-{1 + index % 12:02d}-{1 + kind * 5:02d}T09:{index % 60:02d}:00+01:00",
        "valueQuantity": {
            "value": round(low + (index * 7 + kind * 13) % 100 * span / 100, 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def care_setting() -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Organization",
            "id": ORG_ID,
            "identifier": [{"system": ORGNR_SYSTEM, "value": GP_ORGNR}],
            "name": "Benkvik legekontor",
        },
        {
            "resourceType": "Practitioner",
            "id": PRACTITIONER_ID,
            "identifier": [{"system": HPR_SYSTEM, "value": GP_HPR}],
            "name": [{"family": "Lege", "given": ["Bente"]}],
        },
        {
            "resourceType": "PractitionerRole",
            "id": ROLE_ID,
            "active": True,
            "practitioner": {"reference": f"Practitioner/{PRACTITIONER_ID}"},
            "organization": {"reference": f"Organization/{ORG_ID}"},
        },
    ]


def transaction(resources: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in resources
            ],
        }
    )


def seed_bundles(patients: int) -> list[bytes]:
    bundles = [transaction(care_setting())]
    for first in range(0, patients, PATIENTS_PER_BUNDLE):
        resources: list[dict[str, Any]] = []
        for index in range(first, min(first + PATIENTS_PER_BUNDLE, patients)):
            resources.append(patient(index))
            resources.extend(observation(index, kind) for kind in range(OBSERVATIONS_PER_PATIENT))
        bundles.append(transaction(resources))
    return bundles


# -- tokens ---------------------------------------------------------------------------------------------
def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Credentials:
    system: Mapping[str, str]  # system/*.cruds: seeding and counting AuditEvents
    gp: Mapping[str, str]  # the patients' GP: personnel, user/*.rs
    citizens: Sequence[Mapping[str, str]]  # one per patient, patient/*.rs, pid = their fødselsnummer


def credentials(key_file: Path, patients: int, lifetime_s: int) -> Credentials:
    system = mint_token(
        key_file, subject="bench-seeder", scopes="system/*.cruds", client_id="bench", lifetime=lifetime_s
    )
    gp = mint_token(
        key_file,
        subject=f"hpr-{GP_HPR}",
        scopes="user/*.rs",
        hpr=GP_HPR,
        orgnr=GP_ORGNR,
        category="LE",
        name="Bente Lege",
        client_id="bench-ehr",
        lifetime=lifetime_s,
    )
    citizens = [
        bearer(
            mint_token(
                key_file,
                subject=f"bench-citizen-{index}",
                scopes="patient/*.rs",
                pid=patient_fnr(index),
                client_id="bench-citizen-app",
                lifetime=lifetime_s,
            )
        )
        for index in range(patients)
    ]
    return Credentials(bearer(system), bearer(gp), citizens)


# -- load driving ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """One phase's GET requests, built before the clock starts so the client spends its CPU on HTTP only."""

    urls: Sequence[str]
    headers: Sequence[Mapping[str, str] | None]
    # Called with every 200 response; raising ValueError turns the response into an error.
    check: Callable[[httpx.Response], None] | None = None


def backend_cpu_s(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to `database`, by pid, from /proc (empty without it).

    A backend names its database in its process title ("postgres: 15/main: postgres <db> 127.0.0.1(..)").
    Shared processes (WAL writer, checkpointer) and other databases' backends are left out: other work on
    the host does not count.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    marker = f" {database} ".encode()
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            if marker not in (entry / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        cpu = process_cpu_s(int(entry.name))
        if cpu is not None:
            found[int(entry.name)] = cpu
    return found


class BackendCpu:
    """The database's own CPU during a phase: its backends polled while the load runs.

    Backends come and go (a pool's overflow connections are closed when they are returned), and an exited
    backend's time is gone from /proc: polling keeps what each one had used when last seen. What a backend
    uses between its last poll and its exit is missed.
    """

    POLL_S = 0.25

    def __init__(self, database: str) -> None:
        self.database = database
        self.first = backend_cpu_s(database)
        self.last = dict(self.first)

    def poll(self) -> None:
        self.last.update(backend_cpu_s(self.database))

    def used_s(self) -> float:
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())

    async def follow(self, done: asyncio.Event) -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.POLL_S)
            self.poll()


def postgres_database(url: str) -> str | None:
    """The database name of a PostgreSQL URL (None for SQLite)."""
    return url.rsplit("/", 1)[1] if url.startswith("postgresql") else None


T = TypeVar("T", bound=Tally)


async def run_load(
    clients: Sequence[httpx.AsyncClient],
    count: int,
    deadline: float,
    pid: int,
    postgres: str | None,
    tally: T,
    one: Callable[[httpx.AsyncClient, int], Awaitable[None]],
) -> T:
    """Run `one(client, index)` for index 0..count-1, one in flight per client; stop starting new ones at
    the deadline or after MAX_ERRORS errors. Accounts wall time and the CPU of this process, the server
    (`pid`), the host and, for PostgreSQL (`postgres`: the database name), the database's backends."""
    next_index = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < count and time.monotonic() < deadline:
            if sum(tally.errors.values()) >= MAX_ERRORS:
                tally.aborted = True
                break
            index, next_index = next_index, next_index + 1
            await one(client, index)
        tally.sent = next_index

    server_cpu, host_busy, client_cpu = tree_cpu_s(pid), host_busy_s(), time.process_time()
    backends = BackendCpu(postgres) if postgres else None
    done = asyncio.Event()
    follower = asyncio.create_task(backends.follow(done)) if backends is not None else None
    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients[:count]))
    tally.elapsed_s = time.perf_counter() - started
    tally.client_cpu_s = time.process_time() - client_cpu
    tally.server_cpu_s = delta(server_cpu, tree_cpu_s(pid))
    tally.host_busy_s = delta(host_busy, host_busy_s())
    done.set()
    if follower is not None and backends is not None:
        await follower
        tally.postgres_cpu_s = backends.used_s()
    return tally


async def drive(
    clients: Sequence[httpx.AsyncClient], load: Load, deadline: float, pid: int, postgres: str | None
) -> Tally:
    """Send every request of `load`, one in flight per client; stop starting new ones at the deadline
    (or after MAX_ERRORS errors). `postgres`: the PostgreSQL database whose backends' CPU to account."""
    tally = Tally()
    count = len(load.urls)

    async def one(client: httpx.AsyncClient, index: int) -> None:
        started = time.perf_counter()
        try:
            response = await client.get(load.urls[index], headers=load.headers[index])
        except httpx.HTTPError as exc:
            tally.error(type(exc).__name__, str(exc))
            return
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            tally.error(f"HTTP {response.status_code}", f"GET {load.urls[index]} -> {response.text}")
            return
        try:
            if load.check is not None:
                load.check(response)
        except ValueError as exc:
            tally.error("bad response", f"GET {load.urls[index]}: {exc}")
            return
        tally.ok += 1

    return await run_load(clients, count, deadline, pid, postgres, tally, one)


def check_search(expected: int) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        bundle = orjson.loads(response.content)
        matches = sum(1 for e in bundle.get("entry", ()) if e.get("search", {}).get("mode") == "match")
        if matches != expected or bundle.get("total") != expected:
            raise ValueError(f"{matches} matches, total {bundle.get('total')}; expected {expected}")

    return check


@dataclass(frozen=True)
class AuditCheck:
    added: int  # AuditEvents added while the phase's parts ran (warm-up included)
    expected: int  # successful audited requests (warm-up included), plus refused ones (they are audited too)

    @property
    def passed(self) -> bool:
        return self.added == self.expected


@dataclass(frozen=True)
class PhaseResult:
    mode: str  # "off" or "on"
    phase: str  # read, search, citizen-read
    requested: int
    sent: int
    ok: int
    errors: int
    error_kinds: dict[str, int]
    error_samples: list[str]
    warmup_ok: int
    warmup_errors: int
    requests_per_s: float  # 200 responses per second of wall time
    p50_ms: float
    p99_ms: float
    elapsed_s: float
    client_cpu_pct: float  # of one core; near 100 means the load generator, not the server, is the limit
    server_cpu_pct: float | None  # of one core, the uvicorn process only (not PostgreSQL's backends)
    other_cpu_pct: float | None  # of one core: the rest of the host (PostgreSQL; on SQLite, noise)
    server_cpu_ms_per_request: float | None
    other_cpu_ms_per_request: float | None  # on PostgreSQL mostly the database's work per request
    # The PostgreSQL backends serving the bench database: the database's own work per request, apart from
    # whatever else runs on the host (None on SQLite, whose work is inside the server process).
    db_cpu_ms_per_request: float | None
    truncated: bool  # the time limit (or MAX_ERRORS errors) stopped the phase early
    aborted: bool  # stopped after MAX_ERRORS errors
    audit: dict[str, int | bool] | None  # AuditEvents before/after/expected, for every phase


def _per_request_ms(cpu_s: float | None, ok: int) -> float | None:
    return None if cpu_s is None or not ok else round(1000 * cpu_s / ok, 3)


def summarize(
    mode: str, phase: str, requested: int, warmup: Tally, tally: Tally, audit: AuditCheck | None
) -> PhaseResult:
    latencies = sorted(tally.latencies_ms)
    other_cpu_s = tally.other_cpu_s()
    elapsed = tally.elapsed_s or 1e-9
    return PhaseResult(
        mode=mode,
        phase=phase,
        requested=requested,
        sent=tally.sent,
        ok=tally.ok,
        errors=sum(tally.errors.values()),
        error_kinds=dict(tally.errors),
        error_samples=tally.error_samples + warmup.error_samples[:2],
        warmup_ok=warmup.ok,
        warmup_errors=sum(warmup.errors.values()),
        requests_per_s=round(tally.ok / elapsed, 1),
        p50_ms=round(percentile(latencies, 50), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        elapsed_s=round(tally.elapsed_s, 3),
        client_cpu_pct=round(100 * tally.client_cpu_s / elapsed, 1),
        server_cpu_pct=cpu_pct(tally.server_cpu_s, elapsed),
        other_cpu_pct=cpu_pct(other_cpu_s, elapsed),
        server_cpu_ms_per_request=_per_request_ms(tally.server_cpu_s, tally.ok),
        other_cpu_ms_per_request=_per_request_ms(other_cpu_s, tally.ok),
        db_cpu_ms_per_request=_per_request_ms(tally.postgres_cpu_s, tally.ok),
        truncated=tally.sent < requested,
        aborted=warmup.aborted or tally.aborted,
        audit=(
            None
            if audit is None
            else {
                "added": audit.added,
                "expected": audit.expected,
                "passed": audit.passed,
            }
        ),
    )


# -- phases ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    databases: tuple[str, ...]
    requests: int
    concurrency: int
    warmup: int
    rounds: int
    patients: int
    time_limit_s: float
    results_dir: Path


Who = Callable[[int], Mapping[str, str] | None]  # patient index -> the request's headers (None: no token)


@dataclass(frozen=True)
class Phase:
    mode: str
    name: str
    server: Server
    audited: bool  # every 200 answer must leave exactly one AuditEvent
    make_load: Callable[[Sequence[int]], Load]  # from the patient/observation picks of this phase


async def audit_count(client: httpx.AsyncClient, server: Server, creds: Credentials) -> int:
    """All AuditEvents, counted by the server (a search of AuditEvent alone is not itself audited)."""
    response = await client.get(
        f"{server.base_url}/AuditEvent", params={"_summary": "count"}, headers=creds.system
    )
    if response.status_code != 200:
        raise RuntimeError(f"counting AuditEvents: HTTP {response.status_code}: {response.text[:500]}")
    total = orjson.loads(response.content).get("total")
    if not isinstance(total, int):
        raise RuntimeError(f"counting AuditEvents: no total in {response.text[:500]}")
    return total


async def seed(
    client: httpx.AsyncClient, server: Server, creds: Credentials, patients: int
) -> dict[str, Any]:
    bundles = seed_bundles(patients)
    headers = {**creds.system, "Content-Type": FHIR_JSON}
    started = time.perf_counter()
    for number, body in enumerate(bundles):
        response = await client.post(f"{server.base_url}/", content=body, headers=headers, timeout=300)
        if response.status_code != 200:
            raise RuntimeError(f"seed bundle {number}: HTTP {response.status_code}: {response.text[:2000]}")
    elapsed = time.perf_counter() - started
    resources = len(care_setting()) + patients * (1 + OBSERVATIONS_PER_PATIENT)
    print(f"  seeded {resources:,} resources in {len(bundles)} transactions, {elapsed:.1f} s", flush=True)
    return {"resources": resources, "bundles": len(bundles), "seconds": round(elapsed, 2)}


def plan(off: Server, on: Server, creds: Credentials) -> list[Phase]:
    """A pick is one seeded Observation: patient pick // 5, its kind pick % 5."""
    per_patient = OBSERVATIONS_PER_PATIENT

    def reads(server: Server, who: Who) -> Callable[[Sequence[int]], Load]:
        def make(picks: Sequence[int]) -> Load:
            base = f"{server.base_url}/Observation"
            urls = [f"{base}/{observation_id(p // per_patient, p % per_patient)}" for p in picks]
            return Load(urls, [who(p // per_patient) for p in picks])

        return make

    def searches(server: Server, who: Who) -> Callable[[Sequence[int]], Load]:
        def make(picks: Sequence[int]) -> Load:
            base = f"{server.base_url}/Observation?patient=Patient/"
            urls = [f"{base}{patient_id(p // per_patient)}" for p in picks]
            return Load(urls, [who(p // per_patient) for p in picks], check_search(per_patient))

        return make

    return [
        Phase("off", "read", off, False, reads(off, lambda _i: None)),
        Phase("on", "read", on, True, reads(on, lambda _i: creds.gp)),
        Phase("off", "search", off, False, searches(off, lambda _i: None)),
        Phase("on", "search", on, True, searches(on, lambda _i: creds.gp)),
        Phase("on", "citizen-read", on, True, reads(on, lambda i: creds.citizens[i])),
    ]


# Phases compared with each other, run interleaved: reads (citizen reads are compared with off reads too),
# and searches.
GROUPS = (("read", "citizen-read"), ("search",))


async def counted(
    phase: Phase,
    load: Load,
    clients: Sequence[httpx.AsyncClient],
    deadline: float,
    on: Server,
    creds: Credentials,
    postgres: str | None,
) -> tuple[Tally, AuditCheck]:
    """Run `load` on the phase's server, the AuditEvents on the shared database counted before and after."""
    before = await audit_count(clients[0], on, creds)
    tally = await drive(clients, load, deadline, phase.server.process.pid, postgres)
    after = await audit_count(clients[0], on, creds)
    # Refusals are audited as well (outcome 4); there should be none, and they are errors of the phase.
    expected = tally.ok + tally.errors["HTTP 403"] if phase.audited else 0
    return tally, AuditCheck(after - before, expected)


def part(picks: Sequence[int], index: int, parts: int) -> Sequence[int]:
    size = -(-len(picks) // parts)
    return picks[index * size : (index + 1) * size]


async def run_group(
    members: Sequence[Phase],
    picks_of: Mapping[str, tuple[Sequence[int], Sequence[int]]],
    opts: Options,
    clients: Sequence[httpx.AsyncClient],
    deadline: float,
    on: Server,
    creds: Credentials,
    postgres: str | None,
) -> list[PhaseResult]:
    """Each phase's warm-up (not counted: connections, pools, token cache and code paths get hot), then
    `opts.rounds` rounds, each running a part of every phase, in turn forwards and backwards."""
    warmups: dict[int, Tally] = {}
    parts: dict[int, list[Tally]] = {id(p): [] for p in members}
    audits: dict[int, list[AuditCheck]] = {id(p): [] for p in members}
    for phase in members:
        load = phase.make_load(picks_of[phase.name][0])
        warmups[id(phase)], audit = await counted(phase, load, clients, deadline, on, creds, postgres)
        audits[id(phase)].append(audit)
    for index in range(opts.rounds):
        for phase in members if index % 2 == 0 else list(reversed(members)):
            if time.monotonic() >= deadline:
                break
            load = phase.make_load(part(picks_of[phase.name][1], index, opts.rounds))
            tally, audit = await counted(phase, load, clients, deadline, on, creds, postgres)
            parts[id(phase)].append(tally)
            audits[id(phase)].append(audit)
    results = []
    for phase in members:
        checks = audits[id(phase)]
        audit = AuditCheck(sum(c.added for c in checks), sum(c.expected for c in checks))
        requested = len(picks_of[phase.name][1])
        result = summarize(
            phase.mode, phase.name, requested, warmups[id(phase)], merged(parts[id(phase)]), audit
        )
        verdict = "ok" if audit.passed else f"MISMATCH: expected {audit.expected}"
        print(
            f"  {phase.mode:<3} {phase.name:<12} {result.requests_per_s:>8.1f} req/s  p50 {result.p50_ms:.1f} "
            f"ms  p99 {result.p99_ms:.1f} ms  errors {result.errors}  audit +{audit.added} ({verdict})",
            flush=True,
        )
        results.append(result)
    return results


async def run_phases(
    opts: Options,
    off: Server,
    on: Server,
    clients: Sequence[httpx.AsyncClient],
    creds: Credentials,
    deadline: float,
    postgres: str | None,
) -> list[PhaseResult]:
    rng = random.Random(SEED)
    population = opts.patients * OBSERVATIONS_PER_PATIENT

    def picks() -> tuple[list[int], list[int]]:
        return (
            [rng.randrange(population) for _ in range(opts.warmup)],
            [rng.randrange(population) for _ in range(opts.requests)],
        )

    # The two phases of a pair send the same requests (with and without a token), in the same order.
    read_picks, search_picks, citizen_picks = picks(), picks(), picks()
    picks_of = {"read": read_picks, "search": search_picks, "citizen-read": citizen_picks}
    phases = plan(off, on, creds)
    results = []
    for group in GROUPS:
        if time.monotonic() >= deadline:
            print(f"  {', '.join(group)}: skipped, time limit reached", flush=True)
            continue
        members = [p for p in phases if p.name in group]
        results += await run_group(members, picks_of, opts, clients, deadline, on, creds, postgres)
    return results


def rates(results: Sequence[PhaseResult], phase: str) -> dict[str, PhaseResult]:
    return {r.mode: r for r in results if r.phase == phase}


def ratio(on: PhaseResult | None, off: PhaseResult | None) -> float | None:
    """req/s with security on ÷ off."""
    if on is None or off is None or not off.requests_per_s:
        return None
    return round(on.requests_per_s / off.requests_per_s, 3)


def cpu_ratio(on: PhaseResult | None, off: PhaseResult | None) -> float | None:
    """Server CPU per request off ÷ on: the req/s ratio if the server's CPU were the only limit."""
    if on is None or off is None or not on.server_cpu_ms_per_request:
        return None
    if off.server_cpu_ms_per_request is None:
        return None
    return round(off.server_cpu_ms_per_request / on.server_cpu_ms_per_request, 3)


def ratios(results: Sequence[PhaseResult]) -> dict[str, dict[str, float | None]]:
    read, search = rates(results, "read"), rates(results, "search")
    citizen = rates(results, "citizen-read").get("on")
    return {
        "requests_per_s": {
            "read": ratio(read.get("on"), read.get("off")),
            "search": ratio(search.get("on"), search.get("off")),
            "citizen_read": ratio(citizen, read.get("off")),
        },
        "server_cpu": {
            "read": cpu_ratio(read.get("on"), read.get("off")),
            "search": cpu_ratio(search.get("on"), search.get("off")),
            "citizen_read": cpu_ratio(citizen, read.get("off")),
        },
    }


async def check_modes(client: httpx.AsyncClient, off: Server, on: Server) -> None:
    """`on` must refuse a request without a token and `off` must not: otherwise the comparison is void."""
    probe = "/Observation/bench-auth-probe"
    refused = await client.get(f"{on.base_url}{probe}")
    if refused.status_code != 401:
        raise RuntimeError(f"the 'on' server answered {refused.status_code} without a token, not 401")
    open_ = await client.get(f"{off.base_url}{probe}")
    if open_.status_code != 404:
        raise RuntimeError(f"the 'off' server answered {open_.status_code} without a token, not 404")


async def bench_database(kind: str, opts: Options, deadline: float) -> dict[str, Any]:
    print(
        f"\n== {kind}: {opts.patients} patients, {opts.requests} requests per phase "
        f"{f'in {opts.rounds} interleaved rounds' if opts.rounds > 1 else 'in one go'}, "
        f"concurrency {opts.concurrency}, warm-up {opts.warmup} ==",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-") as tmp:
        workdir = Path(tmp)
        key_file = workdir / "dev-key.json"
        load_or_create_key(key_file)  # before the servers start: they read it at start-up
        creds = credentials(key_file, opts.patients, int(opts.time_limit_s) + 3600)
        secure_env = dev_issuer_env(key_file)
        async with fresh_database(kind, workdir) as url:
            await asyncio.to_thread(migrate, url)
            async with AsyncExitStack() as stack:
                code = code_version()
                servers = [
                    start_server("off", "app.main:create_app", url, workdir, {"AUTH_MODE": "off"}),
                    start_server("on", "app.main:create_app", url, workdir, secure_env),
                ]
                for server in servers:
                    stack.callback(stop_process, server.process)  # runs last: after the clients close
                off, on = servers
                clients = await open_clients(stack, opts.concurrency)
                for server in servers:
                    await wait_ready(clients[0], server, "/metadata", 200)
                await check_modes(clients[0], off, on)
                seeded = await seed(clients[0], on, creds, opts.patients)
                await settle(url)
                results = await run_phases(opts, off, on, clients, creds, deadline, postgres_database(url))
            # Stopped by now: the logs are complete. At WARNING level, any line is worth a look (the
            # off server's "AUTH_MODE=off" warning is expected).
            server_logs = {s.name: log_tail(s.log_path, 40) for s in servers}
    return {
        "database": kind,
        "database_url": url,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "requests": opts.requests,
            "concurrency": opts.concurrency,
            "warmup": opts.warmup,
            "rounds": opts.rounds,
            "patients": opts.patients,
        },
        "code": code,
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "seeded": seeded,
        "phases": [asdict(r) for r in results],
        "ratios": ratios(results),
        "target": TARGET_RATIO,
        "server_logs": server_logs,
    }


# -- reporting ------------------------------------------------------------------------------------------
def _audit_text(audit: dict[str, Any] | None) -> str:
    if audit is None:
        return "n/a"
    return f"+{audit['added']}" + ("" if audit["passed"] else f" != {audit['expected']}")


def format_report(report: dict[str, Any]) -> str:
    header = (
        f"{'mode':<4} {'phase':<12} {'ok/sent':>11} {'errors':>6} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'client cpu':>10} {'server cpu':>10} {'other cpu':>9} {'srv ms/req':>10} "
        f"{'oth ms/req':>10} {'db ms/req':>9} {'audit':>12}"
    )
    lines = [f"\n{report['database']} ({report['database_url']})", header, "-" * len(header)]
    for p in report["phases"]:
        flag = "  (time limit)" if p["truncated"] else ""
        if p["aborted"]:
            flag = f"  (stopped after {MAX_ERRORS} errors)"
        lines.append(
            f"{p['mode']:<4} {p['phase']:<12} {p['ok']:>5}/{p['sent']:<5} {p['errors']:>6} "
            f"{p['requests_per_s']:>8.1f} {p['p50_ms']:>7.1f} {p['p99_ms']:>7.1f} "
            f"{fmt_pct(p['client_cpu_pct']):>10} {fmt_pct(p['server_cpu_pct']):>10} "
            f"{fmt_pct(p['other_cpu_pct']):>9} {fmt_num(p['server_cpu_ms_per_request'], 3):>10} "
            f"{fmt_num(p['other_cpu_ms_per_request'], 3):>10} {fmt_num(p['db_cpu_ms_per_request'], 3):>9} "
            f"{_audit_text(p['audit']):>12}{flag}"
        )
    by_rate, by_cpu = report["ratios"]["requests_per_s"], report["ratios"]["server_cpu"]
    lines.append(
        f"on ÷ off, req/s: reads {fmt_num(by_rate['read'])} (target >= {report['target']}), "
        f"searches {fmt_num(by_rate['search'])}, citizen reads ÷ off reads {fmt_num(by_rate['citizen_read'])}"
    )
    lines.append(
        f"off ÷ on, server CPU per request: reads {fmt_num(by_cpu['read'])}, "
        f"searches {fmt_num(by_cpu['search'])}, citizen reads {fmt_num(by_cpu['citizen_read'])}"
    )
    if by_rate["read"] is not None and by_rate["read"] < report["target"]:
        lines.append(
            f"! reads with security on ÷ off is {by_rate['read']:.3f}: below the target {report['target']}"
        )
    for p in report["phases"]:
        audit = p["audit"]
        if audit is not None and not audit["passed"]:
            lines.append(
                f"!!! AUDIT MISMATCH {p['mode']} {p['phase']}: {audit['added']} AuditEvents added, expected "
                f"{audit['expected']} (one per successful audited request, warm-up included)"
            )
            if p["errors"] or p["warmup_errors"]:
                lines.append(
                    "    the phase had errors: a request the client gave up on may still have been served "
                    "(and audited), and a failed batch loses the events of requests that failed with it"
                )
        if report["database"] == "sqlite" and (p["other_cpu_pct"] or 0) > NOISE_CPU_PCT:
            lines.append(
                f"! {p['mode']} {p['phase']}: other processes used {p['other_cpu_pct']:.0f}% CPU: noisy"
            )
        if p["errors"] or p["warmup_errors"]:
            lines.append(f"! {p['mode']} {p['phase']}: {p['error_kinds']} (+{p['warmup_errors']} in warm-up)")
            lines.extend(f"    {sample}" for sample in p["error_samples"])
    for name, log in report["server_logs"].items():
        shown = [line for line in log.splitlines() if "AUTH_MODE=off" not in line and line.strip()]
        if shown:
            lines.append(f"! {name} server log (last lines):")
            lines.extend(f"    {line}" for line in shown)
    return "\n".join(lines)


def failed(report: dict[str, Any]) -> bool:
    phases = report["phases"]
    return len(phases) < 5 or any(
        p["errors"] or p["warmup_errors"] or p["truncated"] or not p["audit"]["passed"] for p in phases
    )


# -- entry point ----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.security",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql (default: both)"
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests per phase (default 2000)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="interleaved parts each phase of a comparison is run in (default 4)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured requests before each phase (default: 10%% of --requests)",
    )
    parser.add_argument(
        "--patients",
        type=int,
        default=200,
        help=f"patients, {OBSERVATIONS_PER_PATIENT} Observations each (default 200)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=900.0,
        help="seconds for the whole run; phases stop early when it is reached (default 900)",
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    unknown = [d for d in databases if d not in DATABASES]
    if unknown or not databases:
        parser.error(f"--databases takes {', '.join(DATABASES)}; got {args.databases!r}")
    warmup = max(1, args.requests // 10) if args.warmup is None else args.warmup
    if min(args.requests, args.concurrency, args.rounds) < 1 or warmup < 0 or args.time_limit <= 0:
        parser.error("--requests, --concurrency and --rounds must be >= 1, --warmup >= 0, --time-limit > 0")
    if args.rounds > args.requests:
        parser.error("--rounds cannot exceed --requests")
    if not 1 <= args.patients <= MAX_PATIENTS:
        parser.error(f"--patients must be between 1 and {MAX_PATIENTS}")
    return Options(
        databases,
        args.requests,
        args.concurrency,
        warmup,
        args.rounds,
        args.patients,
        args.time_limit,
        args.results_dir,
    )


async def run(opts: Options) -> int:
    deadline = time.monotonic() + opts.time_limit_s
    any_failed = False
    # Backstop beyond the phases' own deadline: start-up, seeding, migrations and shutdown are bounded too.
    async with asyncio.timeout(opts.time_limit_s + 300):
        for kind in opts.databases:
            if time.monotonic() >= deadline:
                print(f"\n== {kind}: skipped, time limit reached ==", flush=True)
                any_failed = True
                continue
            report = await bench_database(kind, opts, deadline)
            print(format_report(report))
            print(f"-> {write_json_report(report, opts.results_dir, 'security')}", flush=True)
            any_failed |= failed(report)
    return 1 if any_failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_main(lambda: run(opts))


if __name__ == "__main__":
    sys.exit(main())
