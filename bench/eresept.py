"""e-resept intake benchmark: `POST /$kith-message` with M1 prescriptions and M10 dispense reports.

    python -m bench.eresept [--databases sqlite,postgresql] [--count 500] [--concurrency 8]

Per database a fresh database, `alembic upgrade head` and Helsebro (AUTH_MODE=off: the engine and the
adapter; the security layer has its own bench) as a uvicorn subprocess on 127.0.0.1, then three phases,
each after a warm-up:

- `M1`: new prescriptions, variants of the own M1 fixture (tests/adapters/eresept/fixtures), each with a
  fresh MsgId (= ReseptId) and its own synthetic patient (bench.kith.patient_identity);
- `M10`: a dispense report for each accepted prescription (fresh MsgId, the prescription's ReseptId and
  patient): the intake finds the stored MedicationRequest and links the dispense to it;
- `M1 again`: the accepted prescriptions re-posted, which must get their first AppRec back byte for byte.

A message counts as accepted for HTTP 200 with an AppRec of status 1 naming its MsgId. The store is counted
after each phase: one MedicationRequest per accepted M1, one MedicationDispense per accepted M10, and
nothing new after the re-posts. Writes bench/results/eresept-<database>.json; exit status 0 only when every
phase ran completely without an error and the counts hold.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    DATABASES,
    DEFAULT_RESULTS_DIR,
    REPO_ROOT,
    code_version,
    fresh_database,
    log_tail,
    migrate,
    open_clients,
    run_main,
    settle,
    start_server,
    stop_process,
    wait_ready,
    write_json_report,
)
from bench.kith import ENDPOINT, PhaseResult, PostLoad, drive, summarize
from bench.kith_messages import Variant, patient_identity
from bench.security import postgres_database

FIXTURES = REPO_ROOT / "tests" / "adapters" / "eresept" / "fixtures"
M1_ID, M10_ID = b"6f1c2a90-3b1e-4a57-9d55-2f0c8e7a1b23", b"a4f0e2b1-6c3d-4e8f-9a0b-1c2d3e4f5a6b"
FIXTURE_FNR = b"03846130011"  # the fixtures' synthetic patient, a man
COUNTED = ("MedicationRequest", "MedicationDispense", "Communication")


def _variant(template: bytes, replacements: dict[bytes, str], msg_id: str, fnr: str) -> Variant:
    body = template
    for old, new in replacements.items():
        if old not in body:
            raise ValueError(f"the template has no {old!r}")
        body = body.replace(old, new.encode("ascii"))
    return Variant("e-resept", msg_id, msg_id, fnr, body)


def prescriptions(count: int, first_patient: int) -> list[Variant]:
    """`count` new M1s: fresh ReseptIds, patients `first_patient`, `first_patient + 1`, ..."""
    template = (FIXTURES / "m1_merkevare.xml").read_bytes()
    out = []
    for i in range(count):
        msg_id, (fnr, _born) = str(uuid.uuid4()), patient_identity(first_patient + i, male=True)
        out.append(_variant(template, {M1_ID: msg_id, FIXTURE_FNR: fnr}, msg_id, fnr))
    return out


def dispenses(of: Sequence[Variant]) -> list[Variant]:
    """An M10 for each prescription: its ReseptId and patient, a fresh MsgId."""
    template = (FIXTURES / "m10_utlevering.xml").read_bytes()
    out = []
    for rx in of:
        msg_id = str(uuid.uuid4())
        out.append(
            _variant(template, {M10_ID: msg_id, M1_ID: rx.msg_id, FIXTURE_FNR: rx.fnr}, msg_id, rx.fnr)
        )
    return out


async def store_counts(client: httpx.AsyncClient, base_url: str) -> dict[str, int]:
    counts = {}
    for res_type in COUNTED:
        response = await client.get(f"{base_url}/{res_type}", params={"_summary": "count"})
        total = response.json().get("total") if response.status_code == 200 else None
        if not isinstance(total, int):
            raise RuntimeError(f"counting {res_type}: HTTP {response.status_code}: {response.text[:300]}")
        counts[res_type] = total
    return counts


@dataclass(frozen=True)
class Options:
    databases: tuple[str, ...]
    count: int
    warmup: int
    concurrency: int
    time_limit_s: float
    results_dir: Path


@dataclass
class _Run:
    """One database's phases, run against its server."""

    clients: Sequence[httpx.AsyncClient]
    base_url: str
    url: str
    pid: int
    postgres: str | None
    deadline: float
    phases: list[PhaseResult]
    counts: dict[str, dict[str, int]]

    async def phase(
        self, name: str, variants: Sequence[Variant], warmup: int, expected: Sequence[bytes] | None = None
    ) -> tuple[list[Variant], list[bytes]]:
        """Post `variants` (the first `warmup` unmeasured), count the store after; the accepted ones and
        their AppRecs, warm-up included."""
        warm = PostLoad(variants[:warmup], None if expected is None else expected[:warmup])
        load = PostLoad(variants[warmup:], None if expected is None else expected[warmup:])
        warm_tally = await drive(self.clients, self.url, warm, self.deadline, self.pid, self.postgres)
        tally = await drive(self.clients, self.url, load, self.deadline, self.pid, self.postgres)
        self.phases.append(summarize(name, len(load.variants), warm_tally, tally))
        r = self.phases[-1]
        print(
            f"  {name:<9} {r.messages_per_s:>7.1f} msg/s  p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms"
            f"  errors {r.errors + r.warmup_errors}",
            flush=True,
        )
        self.counts[name] = await store_counts(self.clients[0], self.base_url)
        accepted = [(warm.variants[i], a) for i, a in sorted(warm_tally.answers.items())]
        accepted += [(load.variants[i], a) for i, a in sorted(tally.answers.items())]
        return [v for v, _ in accepted], [a for _, a in accepted]


def _checks(phases: list[PhaseResult], counts: dict[str, dict[str, int]]) -> dict[str, bool]:
    ok = {p.phase: p.ok + p.warmup_ok for p in phases}
    return {
        "one MedicationRequest per accepted M1": counts.get("M1", {}).get("MedicationRequest")
        == ok.get("M1"),
        "one MedicationDispense per accepted M10": counts.get("M10", {}).get("MedicationDispense")
        == ok.get("M10"),
        "re-posts store nothing": "M1 again" in counts and counts["M1 again"] == counts.get("M10"),
    }


async def bench_database(kind: str, opts: Options, deadline: float) -> dict[str, Any]:
    print(f"\n== {kind}: {opts.count} messages per phase, concurrency {opts.concurrency} ==", flush=True)
    phases: list[PhaseResult] = []
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-") as tmp:
        workdir = Path(tmp)
        async with fresh_database(kind, workdir) as db_url:
            await asyncio.to_thread(migrate, db_url)
            async with AsyncExitStack() as stack:
                code = code_version()
                server = start_server(
                    "helsebro", "app.main:create_app", db_url, workdir, {"AUTH_MODE": "off"}
                )
                stack.callback(stop_process, server.process)  # runs last: after the clients close
                clients = await open_clients(stack, opts.concurrency)
                await wait_ready(clients[0], server, "/metadata", 200)
                run = _Run(
                    clients,
                    server.base_url,
                    f"{server.base_url}{ENDPOINT}",
                    server.process.pid,
                    postgres_database(db_url),
                    deadline,
                    phases,
                    counts,
                )
                accepted, answers = await run.phase(
                    "M1", prescriptions(opts.warmup + opts.count, 0), opts.warmup
                )
                await settle(db_url)
                await run.phase("M10", dispenses(accepted), opts.warmup)
                await settle(db_url)
                await run.phase("M1 again", accepted, opts.warmup, answers)
            server_log = log_tail(server.log_path, 40)
    return {
        "database": kind,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {"count": opts.count, "warmup": opts.warmup, "concurrency": opts.concurrency},
        "code": code,
        "phases": [asdict(p) for p in phases],
        "counts": counts,
        "checks": _checks(phases, counts),
        "server_log": server_log,
    }


def failed(report: dict[str, Any]) -> bool:
    phases = report["phases"]
    return (
        len(phases) < 3
        or not all(report["checks"].values())
        or any(p["errors"] or p["warmup_errors"] or p["truncated"] for p in phases)
    )


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.eresept",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--databases", default=",".join(DATABASES), help="comma-separated (default: both)")
    parser.add_argument("--count", type=int, default=500, help="measured messages per phase (default 500)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured messages first (default 10%%)")
    parser.add_argument("--concurrency", type=int, default=8, help="messages in flight (default 8)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for the run (default 600)")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    if not databases or any(d not in DATABASES for d in databases):
        parser.error(f"--databases takes {', '.join(DATABASES)}; got {args.databases!r}")
    warmup = max(1, args.count // 10) if args.warmup is None else args.warmup
    if min(args.count, args.concurrency) < 1 or warmup < 0 or args.time_limit <= 0:
        parser.error("--count and --concurrency must be >= 1, --warmup >= 0, --time-limit > 0")
    return Options(databases, args.count, warmup, args.concurrency, args.time_limit, args.results_dir)


async def run(opts: Options) -> int:
    deadline = time.monotonic() + opts.time_limit_s
    any_failed = False
    async with asyncio.timeout(opts.time_limit_s + 300):  # start-up, migrations and shutdown too
        for kind in opts.databases:
            report = await bench_database(kind, opts, deadline)
            for check, passed in report["checks"].items():
                print(f"  {'ok ' if passed else 'FAILED'} {check}", flush=True)
            print(f"-> {write_json_report(report, opts.results_dir, 'eresept')}", flush=True)
            any_failed |= failed(report)
    return 1 if any_failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_main(lambda: run(opts))


if __name__ == "__main__":
    sys.exit(main())
