"""Serve the API: `python -m app.serve [--host H] [--port P]`, with `WORKERS` processes.

One process is the embedded default (`make run`). Production runs several stateless processes on
PostgreSQL (uvicorn workers here, or any process manager starting `app.main:create_app` as a factory):
they share nothing but the database, which holds every cross-process invariant (optimistic versions,
conditional-create keys, the subscription outbox's and the jobs' leases, emergency-access grants), so
processes can also run on several hosts behind a load balancer.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from app.config import Settings
from app.store.engine import is_sqlite


def check(settings: Settings) -> str | None:
    """Why these settings cannot be served, or None."""
    if settings.workers < 1:
        return "WORKERS must be at least 1"
    if settings.cpu_processes < 0:
        return "CPU_PROCESSES must be 0 (none) or more"
    if settings.workers > 1 and is_sqlite(settings.database_url):
        return "WORKERS above 1 needs PostgreSQL (DATABASE_URL=postgresql+asyncpg://...): SQLite serves one process"
    return None


def banner(settings: Settings, host: str, port: int) -> str:
    """Where things are, and how to get in: printed once before serving."""
    base = settings.base_url.rstrip("/") or f"http://{host}:{port}"
    demo_sign_in = settings.auth_mode == "jwt" and settings.auth_dev_issuer
    portal = (
        "sign in as a demo citizen"
        if demo_sign_in
        else "its demo sign-in needs AUTH_DEV_ISSUER=true and AUTH_MODE=jwt"
    )
    lines = [
        f"Helsebro FHIR R4 at {base} ({settings.workers} process{'es' if settings.workers > 1 else ''})",
        f"  API documentation: {base}/docs   CapabilityStatement: {base}/metadata",
        f"  Citizen portal: {base}/portal ({portal})",
    ]
    if settings.auth_mode == "off":
        lines.append("  AUTH_MODE=off: no authentication, access policy or audit (local demo only)")
    elif settings.auth_dev_issuer:
        lines.append("  Tokens from the development issuer: `make -s token` (the demo GP), or")
        lines.append(
            "  `.venv/bin/python -m app.security.devtoken --help` (personnel, citizen, system client)"
        )
    else:
        lines.append("  Every FHIR request needs a bearer token from a trusted issuer (AUTH_ISSUERS)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    settings = Settings()
    problem = check(settings)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    print(banner(settings, args.host, args.port), file=sys.stderr)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=settings.workers,
        access_log=False,  # the app logs each request itself, without query strings
        log_level=settings.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
