"""KITH intake benchmark: Henvisning <-> FHIR conversion in-process, and `POST /$kith-message` on a server.

    python -m bench.kith [--only convert|post] [--databases sqlite,postgresql] [--count 500]
                         [--kinds 2.0,1.1,plo-log,plo-report,epikrise]
                         [--convert-count 2000] [--concurrency 8] [--xsd-dir DIR] [--server-xsd]

Messages are variants of templates (bench/kith_messages.py): the own Henvisning fixtures (2.0
HENVISNING_NYTILSTAND in a MsgHead; 1.1 with its own header, ISO-8859-1) and official samples (PLO 1.6
Pasientlogistikk "utskrivningsklar pasient" and Utskrivningsrapport, Epikrise 1.2): every variant has a
fresh MsgId, a fresh document id where the message has one and its own synthetic patient (fødselsnummer
with month + 80 and valid check digits, matching date of birth and sex), so each one is a new message
about a new patient.

convert: single core, in this process, no server. XML -> Referral -> FHIR transaction Bundle
(`parse_henvisning` + `referral_to_bundle`) for 2.0 and 1.1, also with XSD validation when the official
XSDs are found; Bundle -> Referral -> XML (`referral_from_bundle` + `serialize_henvisning`) written as 2.0
and as 1.1. Writes bench/results/kith-convert.json.

post: per database a fresh database, `alembic upgrade head`, Helsebro (AUTH_MODE=off) as a uvicorn
subprocess on 127.0.0.1, then a phase of new messages per kind and re-posts of accepted ones (which must
get the same AppRec back, and store nothing new), each phase after a warm-up. A message counts as accepted
for HTTP 200 with an AppRec of status 1 (OK) that names its MsgId. Writes bench/results/kith-<database>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.adapters.kith.errors import KithError
from app.adapters.kith.from_fhir import referral_from_bundle
from app.adapters.kith.henvisning import parse_henvisning, serialize_henvisning
from app.adapters.kith.model import HenvisningVersion
from app.adapters.kith.to_fhir import referral_to_bundle
from app.adapters.kith.xmlsafe import parse_xml
from app.adapters.kith.xsd import XsdValidator
from bench.common import (
    DATABASES,
    DEFAULT_RESULTS_DIR,
    Server,
    Tally,
    code_label,
    code_version,
    cpu_pct,
    fmt_num,
    fmt_pct,
    fresh_database,
    host_info,
    log_tail,
    migrate,
    open_clients,
    percentile,
    run_main,
    settle,
    start_server,
    stop_process,
    wait_ready,
)
from bench.kith_messages import (
    DEFAULT_LEGACY_DIR,
    KINDS,
    LEGACY_DIR_ENV,
    MAX_MESSAGES,
    Variant,
    load_template,
    make_variants,
)
from bench.security import postgres_database, run_load

CONVERTED = ("2.0", "1.1")  # the kinds of bench/kith_messages.py that convert measures (Henvisning)
ENDPOINT = "/$kith-message"
XML_HEADERS = {"Content-Type": "application/xml", "Accept": "application/xml"}
APPREC_NAMESPACES = (
    "http://www.kith.no/xmlstds/apprec/2012-02-15",
    "http://www.kith.no/xmlstds/apprec/2004-11-21",
)
APPREC_OK = "1"  # Volven 8258: OK
NOISE_CPU_PCT = 20  # other processes' CPU (percent of one core) above which a SQLite phase is flagged
# Totals counted around the duplicate phase: re-posting an accepted message must store nothing.
PROBE_KIND = "2.0"  # the availability probe posts one new referral of this kind
PHASE_WIDTH = 14
COUNTED_TYPES = ("ServiceRequest", "Task", "Patient", "Communication", "Encounter", "Composition")


# -- conversion, in-process -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvertResult:
    name: str  # e.g. "xml→fhir 2.0 +xsd"
    direction: str  # "xml-to-fhir" or "fhir-to-xml"
    version: str  # of the XML read or written
    xsd: bool  # validated against the official XSDs (xml-to-fhir only)
    messages: int
    warmup: int
    elapsed_s: float
    cpu_pct: float  # of one core, this process (single-threaded: ~100)
    messages_per_s: float
    mean_us: float
    p50_us: float
    p95_us: float
    mean_xml_bytes: int  # the XML read or written
    truncated: bool  # the time limit stopped it early


def time_each(
    name: str,
    direction: str,
    version: str,
    xsd: bool,
    items: Sequence[Any],
    convert: Callable[[Any], Any],
    warmup: int,
    deadline: float,
    xml_bytes: int,
) -> ConvertResult:
    """`convert` over `warmup` items (unmeasured), then over every item, each one timed."""
    for item in items[:warmup]:
        convert(item)
    latencies: list[float] = []
    cpu, started = time.process_time(), time.perf_counter()
    for item in items:
        if time.monotonic() >= deadline:
            break
        one = time.perf_counter()
        convert(item)
        latencies.append(time.perf_counter() - one)
    elapsed = time.perf_counter() - started or 1e-9
    cpu_s = time.process_time() - cpu
    done = len(latencies)
    latencies.sort()
    return ConvertResult(
        name=name,
        direction=direction,
        version=version,
        xsd=xsd,
        messages=done,
        warmup=warmup,
        elapsed_s=round(elapsed, 3),
        cpu_pct=round(100 * cpu_s / elapsed, 1),
        messages_per_s=round(done / elapsed, 1),
        mean_us=round(1e6 * sum(latencies) / done, 1) if done else 0.0,
        p50_us=round(1e6 * percentile(latencies, 50), 1),
        p95_us=round(1e6 * percentile(latencies, 95), 1),
        mean_xml_bytes=xml_bytes,
        truncated=done < len(items),
    )


def _check_round_trip(variant: Variant) -> None:
    """Not timed: the conversion being measured gives back the referral (so the numbers mean something)."""
    ref = parse_henvisning(variant.body)
    if (ref.msg_id, ref.document_id, ref.patient.ident("FNR")) != (
        variant.msg_id,
        variant.document_id,
        variant.fnr,
    ):
        raise RuntimeError(f"variant {variant.version} does not carry its own ids")
    if referral_from_bundle(referral_to_bundle(ref)) != ref:
        raise RuntimeError(f"Henvisning {variant.version}: XML -> FHIR -> model is not the identity")


def bench_convert(opts: Options, validator: XsdValidator | None, deadline: float) -> dict[str, Any]:
    count, warmup = opts.convert_count, min(opts.convert_count, opts.convert_warmup)
    print(
        f"\n== convert: {count} messages per case, warm-up {warmup}, single core, in-process ==", flush=True
    )
    code = code_version()
    results: list[ConvertResult] = []
    skipped: dict[str, str] = {}
    variants = {v: make_variants(v, load_template(v), count, i * count) for i, v in enumerate(CONVERTED)}
    for version, items in variants.items():
        _check_round_trip(items[0])
        size = sum(len(v.body) for v in items) // len(items)
        bodies = [v.body for v in items]
        cases: list[tuple[str, XsdValidator | None]] = [("", None)]
        if validator is not None:
            result = validator.validate(parse_xml(bodies[0]))
            if result.skipped:
                skipped[f"xml→fhir {version} +xsd"] = result.reason or "skipped"
            elif not result.valid:
                raise RuntimeError(f"Henvisning {version} variant does not validate: {result.errors[:3]}")
            else:
                cases.append((" +xsd", validator))
        for suffix, check in cases:

            def xml_to_fhir(body: bytes, check: XsdValidator | None = check) -> dict[str, Any]:
                return referral_to_bundle(parse_henvisning(body, validator=check))

            results.append(
                time_each(
                    f"xml→fhir {version}{suffix}",
                    "xml-to-fhir",
                    version,
                    check is not None,
                    bodies,
                    xml_to_fhir,
                    warmup,
                    deadline,
                    size,
                )
            )
            _print_convert(results[-1])
    for version in CONVERTED:
        target = HenvisningVersion(version)
        # Bundles of the messages of that version, made before the clock starts (1.1 from the 1.1 messages,
        # so nothing is lost to the older format).
        bundles = [referral_to_bundle(parse_henvisning(v.body)) for v in variants[version]]
        sample = serialize_henvisning(referral_from_bundle(bundles[0]), target)
        if parse_henvisning(sample) != parse_henvisning(variants[version][0].body):
            raise RuntimeError(f"FHIR -> Henvisning {version} does not give the referral back")

        def fhir_to_xml(bundle: dict[str, Any], target: HenvisningVersion = target) -> bytes:
            return serialize_henvisning(referral_from_bundle(bundle), target)

        results.append(
            time_each(
                f"fhir→xml {version}",
                "fhir-to-xml",
                version,
                False,
                bundles,
                fhir_to_xml,
                warmup,
                deadline,
                len(sample),
            )
        )
        _print_convert(results[-1])
    for name, reason in skipped.items():
        print(f"  {name:<20} skipped: {reason}", flush=True)
    return {
        "database": "convert",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "count": count,
            "warmup": warmup,
            "xsd_dir": None if opts.xsd_dir is None else str(opts.xsd_dir),
        },
        "code": code,
        "host": host_info(),
        "templates": {name: KINDS[name].template for name in CONVERTED},
        "results": [asdict(r) for r in results],
        "skipped": skipped,
    }


def _print_convert(r: ConvertResult) -> None:
    print(
        f"  {r.name:<20} {r.messages_per_s:>8.1f} msg/s  mean {r.mean_us:>7.0f} µs  p50 {r.p50_us:.0f} µs"
        f"  p95 {r.p95_us:.0f} µs  cpu {r.cpu_pct:.0f}%",
        flush=True,
    )


# -- POST /$kith-message ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PostLoad:
    """One phase's messages, built before the clock starts."""

    variants: Sequence[Variant]
    # For re-posts: the answer the first posting got; the re-post must get the same bytes.
    expected: Sequence[bytes] | None = None


@dataclass
class PostTally(Tally):
    answers: dict[int, bytes] = field(default_factory=dict)  # index -> AppRec of an accepted message


def apprec_verdict(body: bytes, msg_id: str) -> str:
    """ "" for an AppRec with status 1 (OK) answering `msg_id`, else what is wrong (no message content)."""
    try:
        root = parse_xml(body)
    except KithError as exc:
        return f"answer is not XML ({exc.code.value})"
    for ns in APPREC_NAMESPACES:
        apprec = root if root.tag == f"{{{ns}}}AppRec" else next(root.iter(f"{{{ns}}}AppRec"), None)
        if apprec is None:
            continue
        status = apprec.find(f"{{{ns}}}Status")
        if status is None or status.get("V") != APPREC_OK:
            errors = ",".join(e.get("V") or "?" for e in apprec.iterfind(f"{{{ns}}}Error"))
            return (
                f"AppRec status {None if status is None else status.get('V')} ({errors or 'no error code'})"
            )
        if apprec.findtext(f"{{{ns}}}OriginalMsgId/{{{ns}}}Id") != msg_id:
            return "AppRec answers another MsgId"
        return ""
    return "answer is not an AppRec"


async def drive(
    clients: Sequence[httpx.AsyncClient],
    url: str,
    load: PostLoad,
    deadline: float,
    pid: int,
    postgres: str | None,
) -> PostTally:
    """Post every message of `load`, one in flight per client; stop at the deadline or after MAX_ERRORS."""
    tally = PostTally()
    count = len(load.variants)

    async def one(client: httpx.AsyncClient, index: int) -> None:
        variant = load.variants[index]
        started = time.perf_counter()
        try:
            response = await client.post(url, content=variant.body, headers=XML_HEADERS)
        except httpx.HTTPError as exc:
            tally.error(type(exc).__name__, str(exc))
            return
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        verdict = apprec_verdict(response.content, variant.msg_id)
        if response.status_code != 200 or verdict:
            # The AppRec's Error code says why; the receipt never carries patient data.
            tally.error(f"HTTP {response.status_code}", f"{verdict or 'HTTP status'}: {response.text[:600]}")
            return
        if load.expected is not None and response.content != load.expected[index]:
            tally.error("other AppRec", "a re-post got a different AppRec than the first posting")
            return
        tally.answers[index] = response.content
        tally.ok += 1

    return await run_load(clients, count, deadline, pid, postgres, tally, one)


@dataclass(frozen=True)
class PhaseResult:
    phase: str  # new 2.0, new 1.1, duplicate
    requested: int
    sent: int
    ok: int  # HTTP 200 with an AppRec status 1 for the message (and, re-posted, the first AppRec again)
    errors: int
    error_kinds: dict[str, int]
    error_samples: list[str]
    warmup_ok: int
    warmup_errors: int
    messages_per_s: float  # accepted messages per second of wall time
    p50_ms: float
    p95_ms: float
    p99_ms: float
    elapsed_s: float
    client_cpu_pct: float  # of one core; near 100 means the load generator, not the server, is the limit
    server_cpu_pct: float | None  # of one core, the uvicorn process only
    other_cpu_pct: float | None  # of one core: the rest of the host (PostgreSQL; on SQLite, noise)
    server_cpu_ms_per_message: float | None
    db_cpu_ms_per_message: float | None  # PostgreSQL backends of the bench database (None on SQLite)
    truncated: bool  # the time limit (or MAX_ERRORS errors) stopped the phase early
    aborted: bool


def _per_message_ms(cpu_s: float | None, ok: int) -> float | None:
    return None if cpu_s is None or not ok else round(1000 * cpu_s / ok, 3)


def summarize(phase: str, requested: int, warmup: Tally, tally: Tally) -> PhaseResult:
    latencies = sorted(tally.latencies_ms)
    other_cpu_s = tally.other_cpu_s()
    elapsed = tally.elapsed_s or 1e-9
    return PhaseResult(
        phase=phase,
        requested=requested,
        sent=tally.sent,
        ok=tally.ok,
        errors=sum(tally.errors.values()),
        error_kinds=dict(tally.errors),
        error_samples=tally.error_samples + warmup.error_samples[:2],
        warmup_ok=warmup.ok,
        warmup_errors=sum(warmup.errors.values()),
        messages_per_s=round(tally.ok / elapsed, 1),
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        elapsed_s=round(tally.elapsed_s, 3),
        client_cpu_pct=round(100 * tally.client_cpu_s / elapsed, 1),
        server_cpu_pct=cpu_pct(tally.server_cpu_s, elapsed),
        other_cpu_pct=cpu_pct(other_cpu_s, elapsed),
        server_cpu_ms_per_message=_per_message_ms(tally.server_cpu_s, tally.ok),
        db_cpu_ms_per_message=_per_message_ms(tally.postgres_cpu_s, tally.ok),
        truncated=tally.sent < requested,
        aborted=warmup.aborted or tally.aborted,
    )


@dataclass
class Accepted:
    """Messages accepted so far, with their first answers: the duplicate phase re-posts them."""

    measured: list[tuple[Variant, bytes]] = field(default_factory=list)
    warmup: list[tuple[Variant, bytes]] = field(default_factory=list)

    @staticmethod
    def of(load: PostLoad, tally: PostTally) -> list[tuple[Variant, bytes]]:
        return [(load.variants[i], answer) for i, answer in sorted(tally.answers.items())]


def _interleave(*lists: Sequence[tuple[Variant, bytes]]) -> list[tuple[Variant, bytes]]:
    out: list[tuple[Variant, bytes]] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def counted_label(name: str) -> str:
    """The search that finds one resource per accepted new message of a kind, as a label."""
    res_type, params = KINDS[name].counted
    return f"{res_type}?{'&'.join(f'{k}={v}' for k, v in params.items())}"


async def store_counts(client: httpx.AsyncClient, server: Server, kinds: Sequence[str]) -> dict[str, int]:
    """How many resources of each COUNTED_TYPES the server holds, and how many each kind's counted search
    finds (`_summary=count`)."""
    searches: dict[str, tuple[str, dict[str, str]]] = {t: (t, {}) for t in COUNTED_TYPES}
    searches |= {counted_label(k): KINDS[k].counted for k in kinds}
    counts = {}
    for label, (res_type, params) in searches.items():
        response = await client.get(f"{server.base_url}/{res_type}", params={**params, "_summary": "count"})
        total = response.json().get("total") if response.status_code == 200 else None
        if not isinstance(total, int):
            raise RuntimeError(f"counting {label}: HTTP {response.status_code}: {response.text[:500]}")
        counts[label] = total
    return counts


@dataclass(frozen=True)
class StoreCheck:
    """After the new messages, each kind's counted search finds one resource per accepted message of the
    kinds it counts (referrals: the probe's included); the re-posts (warm-up included) change no count."""

    expected_new: dict[str, int]  # counted search -> accepted new messages it should find
    after_new: dict[str, int]
    after_duplicates: dict[str, int] | None

    @property
    def passed(self) -> bool:
        if any(self.after_new.get(label) != n for label, n in self.expected_new.items()):
            return False
        return self.after_duplicates is None or self.after_duplicates == self.after_new


async def run_post_phases(
    server: Server, clients: Sequence[httpx.AsyncClient], opts: Options, deadline: float, database_url: str
) -> tuple[list[PhaseResult], StoreCheck]:
    url = f"{server.base_url}{ENDPOINT}"
    pid, postgres = server.process.pid, postgres_database(database_url)
    per_phase = opts.count + opts.warmup
    results: list[PhaseResult] = []
    accepted: dict[str, Accepted] = {}
    for i, version in enumerate(opts.kinds):
        phase = f"new {version}"
        if time.monotonic() >= deadline:
            print(f"  {phase:<{PHASE_WIDTH}} skipped: time limit reached", flush=True)
            continue
        # Patients of different phases never overlap; +1 for the availability probe's message.
        variants = make_variants(version, load_template(version), per_phase, 1 + i * per_phase)
        warmup_load, load = PostLoad(variants[: opts.warmup]), PostLoad(variants[opts.warmup :])
        warmup = await drive(clients, url, warmup_load, deadline, pid, postgres)
        # What autovacuum does as the tables grow (the test machines run PostgreSQL without it): without
        # fresh statistics the planner took the grown `resource` table for empty and scanned all of it for
        # each conditional match (database CPU per Epikrise 32 ms as the first phase, 93 ms as the fifth).
        await settle(database_url)
        tally = await drive(clients, url, load, deadline, pid, postgres)
        accepted[version] = Accepted(Accepted.of(load, tally), Accepted.of(warmup_load, warmup))
        results.append(summarize(phase, opts.count, warmup, tally))
        _print_phase(results[-1])
    # 1: the probe's referral.
    expected = {counted_label(k): 0 for k in opts.kinds} | {counted_label(PROBE_KIND): 0}
    expected[counted_label(PROBE_KIND)] += 1
    for version, found in accepted.items():
        expected[counted_label(version)] += len(found.measured) + len(found.warmup)
    kinds = (PROBE_KIND, *opts.kinds)
    after_new = await store_counts(clients[0], server, kinds)
    measured = _interleave(*(a.measured for a in accepted.values()))[: opts.count]
    warm = _interleave(*(a.warmup for a in accepted.values()))[: opts.warmup]
    if time.monotonic() >= deadline or not measured:
        reason = "time limit reached" if time.monotonic() >= deadline else "no message was accepted"
        print(f"  {'duplicate':<{PHASE_WIDTH}} skipped: {reason}", flush=True)
        return results, StoreCheck(expected, after_new, None)
    await settle(database_url)
    warmup_load = PostLoad([v for v, _ in warm], [a for _, a in warm])
    load = PostLoad([v for v, _ in measured], [a for _, a in measured])
    warmup = await drive(clients, url, warmup_load, deadline, pid, postgres)
    tally = await drive(clients, url, load, deadline, pid, postgres)
    results.append(summarize("duplicate", opts.count, warmup, tally))
    _print_phase(results[-1])
    return results, StoreCheck(expected, after_new, await store_counts(clients[0], server, kinds))


def _print_phase(r: PhaseResult) -> None:
    print(
        f"  {r.phase:<{PHASE_WIDTH}} {r.messages_per_s:>7.1f} msg/s  p50 {r.p50_ms:.1f} ms  p95 {r.p95_ms:.1f} ms"
        f"  errors {r.errors}",
        flush=True,
    )


async def probe(client: httpx.AsyncClient, server: Server) -> str:
    """ "" when POST /$kith-message accepts a new message (one extra variant, not measured), else why not."""
    [variant] = make_variants(PROBE_KIND, load_template(PROBE_KIND), 1, 0)
    try:
        response = await client.post(
            f"{server.base_url}{ENDPOINT}", content=variant.body, headers=XML_HEADERS
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status_code in (404, 405):
        return f"POST {ENDPOINT} is not available on this server (HTTP {response.status_code})"
    verdict = apprec_verdict(response.content, variant.msg_id)
    if response.status_code != 200 or verdict:
        return f"HTTP {response.status_code}, {verdict or 'not accepted'}: {response.text[:600]}"
    return ""


def server_env(opts: Options) -> dict[str, str]:
    env = {"AUTH_MODE": "off", "CPU_PROCESSES": str(opts.cpu_processes)}  # security has its own bench
    if opts.server_xsd and opts.xsd_dir is not None:
        env["KITH_XSD_DIR"] = str(opts.xsd_dir)
    return env


async def bench_database(kind: str, opts: Options, deadline: float) -> dict[str, Any]:
    print(
        f"\n== {kind}: {opts.count} messages per phase, concurrency {opts.concurrency}, "
        f"warm-up {opts.warmup}, server processes {opts.workers if kind == 'postgresql' else 1}, "
        f"CPU processes each {opts.cpu_processes} ==",
        flush=True,
    )
    env = server_env(opts)
    results: list[PhaseResult] = []
    store: StoreCheck | None = None
    unavailable = ""
    with tempfile.TemporaryDirectory(prefix="helsebro-bench-") as tmp:
        workdir = Path(tmp)
        async with fresh_database(kind, workdir) as url:
            await asyncio.to_thread(migrate, url)
            async with AsyncExitStack() as stack:
                code = code_version()
                workers = opts.workers if kind == "postgresql" else 1
                server = start_server("helsebro", "app.main:create_app", url, workdir, env, workers)
                stack.callback(stop_process, server.process)  # runs last: after the clients close
                clients = await open_clients(stack, opts.concurrency)
                await wait_ready(clients[0], server, "/metadata", 200)
                unavailable = await probe(clients[0], server)
                if unavailable:
                    print(f"  ! {unavailable}", flush=True)
                else:
                    results, store = await run_post_phases(server, clients, opts, deadline, url)
            # Stopped by now: the log is complete. At WARNING level, any line is worth a look.
            server_log = log_tail(server.log_path, 40)
    return {
        "database": kind,
        "database_url": url,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "count": opts.count,
            "concurrency": opts.concurrency,
            "workers": opts.workers if kind == "postgresql" else 1,
            "cpu_processes": opts.cpu_processes,
            "warmup": opts.warmup,
            "time_limit_s": opts.time_limit_s,
            "kinds": list(opts.kinds),
            "server_env": env,
        },
        "code": code,
        "host": host_info(),
        "templates": {name: KINDS[name].template for name in opts.kinds},
        "unavailable": unavailable,
        "phases": [asdict(r) for r in results],
        "store": None if store is None else {**asdict(store), "passed": store.passed},
        "server_log": server_log,
    }


# -- reporting ------------------------------------------------------------------------------------------
def format_convert(report: dict[str, Any]) -> str:
    header = (
        f"{'case':<20} {'messages':>8} {'msg/s':>9} {'mean µs':>9} {'p50 µs':>9} {'p95 µs':>9} "
        f"{'cpu':>5} {'xml bytes':>9}"
    )
    lines = [
        f"\nconvert, code {code_label(report['code'])}, single core in-process",
        header,
        "-" * len(header),
    ]
    for r in report["results"]:
        flag = "  (time limit)" if r["truncated"] else ""
        lines.append(
            f"{r['name']:<20} {r['messages']:>8} {r['messages_per_s']:>9.1f} {r['mean_us']:>9.1f} "
            f"{r['p50_us']:>9.1f} {r['p95_us']:>9.1f} {fmt_pct(r['cpu_pct']):>5} {r['mean_xml_bytes']:>9}{flag}"
        )
    lines.extend(f"{name:<20} skipped: {reason}" for name, reason in report["skipped"].items())
    if report["options"]["xsd_dir"] is None:
        lines.append(f"(no XSD directory: --xsd-dir or ${LEGACY_DIR_ENV}/xsd; cases with +xsd not run)")
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    header = (
        f"{'phase':<{PHASE_WIDTH}} {'ok/sent':>11} {'errors':>6} {'msg/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'client cpu':>10} {'server cpu':>10} {'other cpu':>9} {'cpu ms/msg':>10} {'db ms/msg':>9}"
    )
    lines = [
        f"\n{report['database']} ({report['database_url']}), code {code_label(report['code'])}, "
        f"concurrency {report['options']['concurrency']}, server env {report['options']['server_env']}",
        header,
        "-" * len(header),
    ]
    if report["unavailable"]:
        lines.append(f"! not run: {report['unavailable']}")
    for p in report["phases"]:
        flag = "  (time limit)" if p["truncated"] else ""
        lines.append(
            f"{p['phase']:<{PHASE_WIDTH}} {p['ok']:>5}/{p['sent']:<5} {p['errors']:>6} {p['messages_per_s']:>7.1f} "
            f"{p['p50_ms']:>7.1f} {p['p95_ms']:>7.1f} {p['p99_ms']:>7.1f} {fmt_pct(p['client_cpu_pct']):>10} "
            f"{fmt_pct(p['server_cpu_pct']):>10} {fmt_pct(p['other_cpu_pct']):>9} "
            f"{fmt_num(p['server_cpu_ms_per_message'], 2):>10} {fmt_num(p['db_cpu_ms_per_message'], 2):>9}{flag}"
        )
    store = report["store"]
    if store is not None:
        found = ", ".join(f"{k} {store['after_new'].get(k)}/{n}" for k, n in store["expected_new"].items())
        totals = ", ".join(f"{k} {v}" for k, v in store["after_new"].items() if k in COUNTED_TYPES)
        again = store["after_duplicates"]
        lines.append(f"store after the new messages (found/expected): {found}; totals: {totals}")
        lines.append(
            "store after the re-posts: "
            + ("not run" if again is None else "unchanged" if again == store["after_new"] else f"{again}")
        )
        if not store["passed"]:
            lines.append(
                "! STORE MISMATCH: one counted resource per accepted new message, none added by re-posts"
            )
    for p in report["phases"]:
        if report["database"] == "sqlite" and (p["other_cpu_pct"] or 0) > NOISE_CPU_PCT:
            lines.append(f"! {p['phase']}: other processes used {p['other_cpu_pct']:.0f}% CPU: noisy")
        if p["errors"] or p["warmup_errors"]:
            lines.append(f"! {p['phase']}: {p['error_kinds']} (+{p['warmup_errors']} in warm-up)")
            lines.extend(f"    {sample}" for sample in p["error_samples"])
    if report["server_log"].strip():
        lines.append("! server log (last lines):")
        lines.extend(f"    {line[:300]}" for line in report["server_log"].splitlines())
    return "\n".join(lines)


def write_report(report: dict[str, Any], results_dir: Path) -> Path:
    """bench/results/kith-<database>.json, or kith-convert.json (git-ignored)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"kith-{report['database']}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return path


def post_failed(report: dict[str, Any]) -> bool:
    phases = report["phases"]
    return (
        bool(report["unavailable"])
        or len(phases) < len(report["options"]["kinds"]) + 1  # the new phases and the duplicates
        or any(p["errors"] or p["warmup_errors"] or p["truncated"] for p in phases)
    )


# -- entry point ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    parts: tuple[str, ...]  # "convert", "post"
    databases: tuple[str, ...]
    kinds: tuple[str, ...]  # post: the kinds of new message, a phase each (bench/kith_messages.py KINDS)
    count: int
    warmup: int
    convert_count: int
    convert_warmup: int
    concurrency: int
    workers: int  # PostgreSQL: server processes (SQLite serves one process)
    cpu_processes: int  # CPU_PROCESSES of each server process
    xsd_dir: Path | None
    server_xsd: bool
    time_limit_s: float
    results_dir: Path


def default_xsd_dir() -> Path | None:
    """$HELSEBRO_LEGACY_DIR/xsd, else <repo>/../shared/data/legacy/xsd; None when absent."""
    legacy = os.environ.get(LEGACY_DIR_ENV)
    path = (Path(legacy) if legacy else DEFAULT_LEGACY_DIR) / "xsd"
    return path if path.is_dir() else None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kith", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("convert", "post"), help="run one part only (default: both)")
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql (default: both)"
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"post: kinds of new message, a phase each, comma-separated (default: {','.join(KINDS)})",
    )
    parser.add_argument(
        "--count", type=int, default=500, help="post: measured messages per phase (default 500)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="post: unmeasured messages before each phase (default 10%%)"
    )
    parser.add_argument(
        "--convert-count", type=int, default=2000, help="convert: measured messages per case (default 2000)"
    )
    parser.add_argument(
        "--convert-warmup",
        type=int,
        default=None,
        help="convert: unmeasured conversions before each case (default 10%%)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="post: messages in flight (default 8)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="post: server processes on PostgreSQL, as a deployment runs them (SQLite serves one; default 1)",
    )
    parser.add_argument(
        "--cpu-processes",
        type=int,
        default=0,
        help="post: CPU_PROCESSES of each server process, workers for pure CPU work (default 0: none)",
    )
    parser.add_argument(
        "--xsd-dir",
        type=Path,
        default=None,
        help=f"official XSDs (default: ${LEGACY_DIR_ENV}/xsd, else {DEFAULT_LEGACY_DIR / 'xsd'}, if present)",
    )
    parser.add_argument(
        "--server-xsd",
        action="store_true",
        help="post: the server validates against the XSDs too (KITH_XSD_DIR); default off, as configured",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=600.0,
        help="seconds for the whole run; phases stop early when it is reached (default 600)",
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)
    databases = tuple(d.strip() for d in args.databases.split(",") if d.strip())
    unknown = [d for d in databases if d not in DATABASES]
    if unknown or not databases:
        parser.error(f"--databases takes {', '.join(DATABASES)}; got {args.databases!r}")
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds) or len(set(kinds)) < len(kinds):
        parser.error(f"--kinds takes distinct {', '.join(KINDS)}; got {args.kinds!r}")
    warmup = max(1, args.count // 10) if args.warmup is None else args.warmup
    convert_warmup = max(1, args.convert_count // 10) if args.convert_warmup is None else args.convert_warmup
    if (
        min(args.count, args.convert_count, args.concurrency, args.workers) < 1
        or min(warmup, convert_warmup, args.cpu_processes) < 0
    ):
        parser.error(
            "--count, --convert-count, --concurrency and --workers must be >= 1, warm-ups and "
            "--cpu-processes >= 0"
        )
    if args.time_limit <= 0:
        parser.error("--time-limit must be > 0")
    # Every new message has a patient of its own (the probe's is the first).
    if max(len(kinds) * (args.count + warmup), len(CONVERTED) * args.convert_count) + 1 > MAX_MESSAGES:
        parser.error(f"at most {MAX_MESSAGES - 1} new messages in all (distinct synthetic patients)")
    xsd_dir: Path | None = args.xsd_dir if args.xsd_dir is not None else default_xsd_dir()
    if args.xsd_dir is not None and not args.xsd_dir.is_dir():
        parser.error(f"--xsd-dir {args.xsd_dir} is not a directory")
    if args.server_xsd and xsd_dir is None:
        parser.error("--server-xsd needs the XSDs: --xsd-dir or $HELSEBRO_LEGACY_DIR")
    return Options(
        ("convert", "post") if args.only is None else (args.only,),
        databases,
        kinds,
        args.count,
        warmup,
        args.convert_count,
        convert_warmup,
        args.concurrency,
        args.workers,
        args.cpu_processes,
        xsd_dir,
        args.server_xsd,
        args.time_limit,
        args.results_dir,
    )


async def run(opts: Options) -> int:
    deadline = time.monotonic() + opts.time_limit_s
    failed = False
    # Backstop beyond the phases' own deadline: start-up, migrations and shutdown are bounded too.
    async with asyncio.timeout(opts.time_limit_s + 300):
        if "convert" in opts.parts:
            # Skipped validation is reported in the results; the XSD module's own warning would repeat it.
            logging.getLogger("app.adapters.kith.xsd").addHandler(logging.NullHandler())
            validator = None if opts.xsd_dir is None else XsdValidator(opts.xsd_dir)
            report = bench_convert(opts, validator, deadline)  # blocking on purpose: one core, nothing else
            print(format_convert(report))
            print(f"-> {write_report(report, opts.results_dir)}", flush=True)
            failed |= any(r["truncated"] for r in report["results"])
        if "post" in opts.parts:
            for kind in opts.databases:
                if time.monotonic() >= deadline:
                    print(f"\n== {kind}: skipped, time limit reached ==", flush=True)
                    failed = True
                    continue
                report = await bench_database(kind, opts, deadline)
                print(format_report(report))
                print(f"-> {write_report(report, opts.results_dir)}", flush=True)
                failed |= post_failed(report)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_main(lambda: run(opts))


if __name__ == "__main__":
    sys.exit(main())
