"""CPU per new KITH message, in-process: where the intake's time goes, robust to a busy host.

    python -m bench.kith_profile [--kinds 2.0,1.1,plo-log,plo-report,epikrise] [--count 200]
                                 [--database sqlite|postgresql] [--cprofile] [--top 25]

A fresh database (`alembic upgrade head`) and Helsebro (`app.main:create_app`, AUTH_MODE=off) in this
process, called through httpx.ASGITransport as the tests do, one message at a time. Per kind of message
(bench/kith_messages.py): a warm-up of 10% (unmeasured), then `--count` new messages, each accepted only
on HTTP 200 and an AppRec of status 1 naming its MsgId. Reported: this process's CPU ms per message (the
server's work plus the small in-process client; the database's own CPU too on SQLite, not on PostgreSQL).
With `--cprofile`, the functions that took the most CPU (own, and cumulative among Helsebro's own) over\nthe measured messages (the profiler's clock is this process's CPU time: waiting is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from app.config import Settings
from app.gc_tuning import freeze_and_tune
from app.main import create_app
from bench.common import fresh_database, migrate
from bench.kith import ENDPOINT, XML_HEADERS, apprec_verdict
from bench.kith_messages import KINDS, load_template, make_variants

APP_DIR = str(Path(__file__).resolve().parents[1] / "app")


async def profile_kind(
    client: httpx.AsyncClient, name: str, count: int, first_patient: int, profiler: cProfile.Profile | None
) -> float:
    """CPU ms per message of `count` new messages of kind `name` (after an unmeasured warm-up)."""
    warmup = max(1, count // 10)
    variants = make_variants(name, load_template(name), warmup + count, first_patient)
    for variant in variants[:warmup]:
        await _post(client, variant.body, variant.msg_id)
    if profiler is not None:
        profiler.enable()
    started = time.process_time()
    for variant in variants[warmup:]:
        await _post(client, variant.body, variant.msg_id)
    cpu = time.process_time() - started
    if profiler is not None:
        profiler.disable()
    return 1000 * cpu / count


async def _post(client: httpx.AsyncClient, body: bytes, msg_id: str) -> None:
    response = await client.post(ENDPOINT, content=body, headers=XML_HEADERS)
    verdict = apprec_verdict(response.content, msg_id)
    if response.status_code != 200 or verdict:
        raise RuntimeError(f"not accepted: HTTP {response.status_code}, {verdict}: {response.text[:600]}")


async def run(
    kinds: Sequence[str], count: int, database: str, cprofile: bool, top: int, save: Path | None
) -> None:
    with tempfile.TemporaryDirectory(prefix="helsebro-profile-") as tmp:
        async with fresh_database(database, Path(tmp)) as url:
            await asyncio.to_thread(migrate, url)
            settings = Settings(database_url=url, auth_mode="off", log_level="WARNING")
            app = create_app(settings)
            freeze_and_tune()  # as the server's lifespan does, which ASGITransport does not run
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://profile.test") as client:
                    for i, name in enumerate(kinds):
                        profiler = cProfile.Profile(time.process_time) if cprofile else None
                        ms = await profile_kind(client, name, count, i * 2 * count, profiler)
                        print(f"{name:<12} {count} messages  {ms:7.2f} CPU ms/message", flush=True)
                        if profiler is not None:
                            print(_top(profiler, count, top), flush=True)
                            if save is not None:
                                profiler.dump_stats(f"{save}-{name}")
            finally:
                await app.state.database.dispose()


def _top(profiler: cProfile.Profile, count: int, top: int) -> str:
    """The `top` functions by own time and by cumulative time, in ms per message."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = stats.stats  # type: ignore[attr-defined]
    lines = []
    for title, column in (("own", 2), ("cumulative", 3)):
        lines.append(f"  -- by {title} time, ms/message --")
        # Cumulative: Helsebro's own functions only (the framework's call chain above them says nothing).
        mine = [item for item in rows.items() if column == 2 or f"{APP_DIR}/" in item[0][0]]
        ranked = sorted(mine, key=lambda item: item[1][column], reverse=True)[:top]
        for (path, line, func), values in ranked:
            where = f"{Path(path).name}:{line}" if line else path
            lines.append(f"  {1000 * values[column] / count:8.3f}  {func}  ({where})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kith_profile", description=__doc__)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated of {', '.join(KINDS)}")
    parser.add_argument("--count", type=int, default=200, help="measured messages per kind (default 200)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--cprofile", action="store_true", help="print where the time went (slower)")
    parser.add_argument("--top", type=int, default=25, help="functions listed with --cprofile")
    parser.add_argument("--save", type=Path, help="with --cprofile: write each kind's pstats to SAVE-<kind>")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds or args.count < 1:
        parser.error(f"--kinds takes {', '.join(KINDS)}; --count >= 1")
    asyncio.run(run(kinds, args.count, args.database, args.cprofile, args.top, args.save))
    return 0


if __name__ == "__main__":
    sys.exit(main())
