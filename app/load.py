"""Import a directory of data into the store: `python -m app.load DIR`.

For migrating a municipality's or a hospital's journal data, or a day's messages after an outage. It reads,
in name order and recursively:
- `*.ndjson`: FHIR NDJSON (one resource per line, as bulk exports write it), in chunks of `--chunk` lines,
  each chunk one transaction (a resource with an id is written with PUT, so it keeps its id; one without
  is created with POST). When a chunk's transaction fails, the chunk is written again as a batch, so the
  good lines are stored and each bad one is reported with its line number and reason.
- `*.json`: a FHIR Bundle (a `transaction` or `batch` is run as it is, so `urn:uuid` references between its
  entries resolve; any other Bundle's resources are written like NDJSON lines), or a single resource.
- `*.xml`: KITH messages, through the same intake as `POST /$kith-message` (AppRec, idempotent by MsgId).

Everything goes through the engine API as a SystemPrincipal naming the import, so validation, the domain
packs' rules, the access facts and (with authentication on) the audit apply as to any client's writes.
Referential integrity is off for the import (REFERENTIAL_INTEGRITY=false): files come in name order, so
Observation.ndjson comes before the Patient.ndjson its references name. `--check-references` keeps it on.

Resumable: after each committed chunk or file the progress is saved in a state file (`--state`, by default
`.helsebro-load.json` in DIR), and a new run goes on from there; a chunk interrupted before its commit left
nothing behind and is written again. A summary of what failed and why ends the run (and `--report FILE`
writes every failure as a JSON line); the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import gzip
import lzma
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from tqdm import tqdm

from app.adapters.kith import routes as kith
from app.config import Settings
from app.fhir.context import RequestContext, SystemPrincipal
from app.fhir.engine import Engine
from app.fhir.outcome import FhirError
from app.main import create_app

STATE_FILE = ".helsebro-load.json"
SUFFIXES = (".ndjson", ".json", ".xml")
# Compressed files are read as what they hold (bulk exports and archives are often compressed).
OPENERS: dict[str, Callable[[Path], bytes]] = {
    ".gz": lambda p: gzip.decompress(p.read_bytes()),
    ".bz2": lambda p: bz2.decompress(p.read_bytes()),
    ".xz": lambda p: lzma.decompress(p.read_bytes()),
}
COMPLETE = -1  # a file's progress once all of it is done
SHOWN_FAILURES = 20


@dataclass(frozen=True)
class Failure:
    file: str
    where: str  # "line 12", "entry 3", "bundle", "message"
    status: int
    reason: str


@dataclass
class Tally:
    files: int = 0
    resources: int = 0  # resources (or messages) stored
    failures: list[Failure] = field(default_factory=list)


class Progress(Protocol):
    """What the loader tells its progress bar (tqdm's interface)."""

    def update(self, n: int) -> object: ...

    def set_postfix_str(self, text: str) -> None: ...


class LoadState:
    """Per file (by path relative to DIR and size): lines done, or COMPLETE. Saved atomically."""

    def __init__(self, path: Path, fresh: bool = False) -> None:
        self.path = path
        self.files: dict[str, dict[str, int]] = {}
        if path.exists() and not fresh:
            self.files = orjson.loads(path.read_bytes()).get("files", {})

    def done(self, name: str, size: int) -> int:
        """Lines of the file already stored (COMPLETE when all); a file whose size changed starts over."""
        known = self.files.get(name)
        return known["done"] if known is not None and known["size"] == size else 0

    def mark(self, name: str, size: int, done: int) -> None:
        self.files[name] = {"size": size, "done": done}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps({"files": self.files}, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.path)


def kind_of(path: Path) -> str:
    """.ndjson, .json or .xml (also under .gz, .bz2 or .xz); "" for anything else."""
    suffixes = path.suffixes[-2:] if path.suffix in OPENERS else path.suffixes[-1:]
    return suffixes[0] if len(suffixes) and suffixes[0] in SUFFIXES else ""


def read(path: Path) -> bytes:
    opener = OPENERS.get(path.suffix)
    return opener(path) if opener is not None else path.read_bytes()


def discover(directory: Path, state_path: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and kind_of(p) and not p.name.startswith(".") and p != state_path
    )


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    res_type, res_id = resource.get("resourceType"), resource.get("id")
    if isinstance(res_id, str) and res_id:
        return {"resource": resource, "request": {"method": "PUT", "url": f"{res_type}/{res_id}"}}
    return {"resource": resource, "request": {"method": "POST", "url": str(res_type)}}


def _reason(outcome: dict[str, Any] | None) -> str:
    """The first issue of an entry's OperationOutcome, with where in the resource it is."""
    issue = ((outcome or {}).get("issue") or [{}])[0]
    text = str(issue.get("diagnostics") or issue.get("code") or "refused")
    where = issue.get("expression") or []
    return f"{where[0]}: {text}" if where else text


class Loader:
    def __init__(
        self, engine: Engine, ctx: RequestContext, kith_config: kith.KithConfig, chunk: int = 500
    ) -> None:
        self.engine = engine
        self.ctx = ctx
        self.kith_config = kith_config
        self.chunk = chunk

    async def load(self, directory: Path, state: LoadState, progress: Progress) -> Tally:
        tally = Tally()
        started = time.monotonic()
        for path in discover(directory, state.path):
            name, size = str(path.relative_to(directory)), path.stat().st_size
            done = state.done(name, size)
            if done == COMPLETE:
                progress.update(size)
                continue
            tally.files += 1
            kind, content = kind_of(path), read(path)
            if kind == ".ndjson":
                lines = list(enumerate(content.split(b"\n"), 1))
                scaled = _Scaled(progress, size / max(len(content), 1))  # the bar counts bytes on disk
                await self._lines(name, size, lines, done, state, tally, scaled)
            elif kind == ".json":
                await self._json(name, size, content, done, state, tally, progress)
            else:
                await self._message(name, content, tally)
                state.mark(name, size, COMPLETE)
                progress.update(size)
            rate = tally.resources / max(time.monotonic() - started, 1e-6)
            progress.set_postfix_str(f"{tally.resources} stored, {rate:.0f}/s, {len(tally.failures)} failed")
        return tally

    async def _lines(
        self,
        name: str,
        size: int,
        lines: list[tuple[int, bytes]],
        done: int,
        state: LoadState,
        tally: Tally,
        progress: Progress,
    ) -> None:
        """NDJSON lines (or a Bundle's resources, numbered as entries) in chunks, each committed alone."""
        progress.update(sum(len(text) + 1 for _, text in lines[:done]))
        for start in range(done, len(lines), self.chunk):
            part = lines[start : start + self.chunk]
            parsed: list[tuple[int, dict[str, Any]]] = []
            for number, text in part:
                if not text.strip():
                    continue
                try:
                    resource = orjson.loads(text)
                except orjson.JSONDecodeError:
                    tally.failures.append(Failure(name, f"line {number}", 400, "not a JSON resource"))
                    continue
                if not isinstance(resource, dict) or "resourceType" not in resource:
                    tally.failures.append(Failure(name, f"line {number}", 400, "not a FHIR resource"))
                    continue
                parsed.append((number, resource))
            await self._write(name, parsed, tally)
            end = start + len(part)
            state.mark(name, size, COMPLETE if end >= len(lines) else end)
            progress.update(sum(len(text) + 1 for _, text in part))
        if not lines[done:]:
            state.mark(name, size, COMPLETE)

    async def _write(self, name: str, parsed: list[tuple[int, dict[str, Any]]], tally: Tally) -> None:
        if not parsed:
            return
        entries = [_entry(resource) for _, resource in parsed]
        try:
            await self.engine.transaction(
                self.ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            )
            tally.resources += len(entries)
            return
        except FhirError:
            pass  # find the bad lines: the same chunk as a batch stores the good ones
        result = await self.engine.transaction(
            self.ctx, {"resourceType": "Bundle", "type": "batch", "entry": entries}
        )
        for (number, _), entry in zip(parsed, result.entries, strict=True):
            if entry.status < 300:
                tally.resources += 1
            else:
                tally.failures.append(Failure(name, f"line {number}", entry.status, _reason(entry.outcome)))

    async def _json(
        self,
        name: str,
        size: int,
        content: bytes,
        done: int,
        state: LoadState,
        tally: Tally,
        progress: Progress,
    ) -> None:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or "resourceType" not in body:
            tally.failures.append(Failure(name, "file", 400, "not a FHIR resource or Bundle"))
        elif body["resourceType"] == "Bundle" and body.get("type") in ("transaction", "batch"):
            await self._bundle(name, body, tally)
        else:
            resources = (
                [e.get("resource") for e in body.get("entry") or []]
                if body["resourceType"] == "Bundle"
                else [body]
            )
            numbered = [(n, orjson.dumps(r)) for n, r in enumerate(resources, 1) if isinstance(r, dict)]
            await self._lines(name, size, numbered, done, state, tally, _Silent())
        state.mark(name, size, COMPLETE)
        progress.update(size)

    async def _bundle(self, name: str, body: dict[str, Any], tally: Tally) -> None:
        try:
            result = await self.engine.transaction(self.ctx, body)
        except FhirError as error:
            tally.failures.append(Failure(name, "bundle", error.status, error.message))
            return
        for number, entry in enumerate(result.entries, 1):
            if entry.status < 300:
                tally.resources += 1
            else:
                tally.failures.append(Failure(name, f"entry {number}", entry.status, _reason(entry.outcome)))

    async def _message(self, name: str, content: bytes, tally: Tally) -> None:
        reply = await kith.receive(self.engine, self.ctx, self.kith_config, content)
        if reply.status < 300:
            tally.resources += 1
        else:
            tally.failures.append(Failure(name, "message", reply.status, reply.refusal or "refused"))


class _Scaled:
    """Progress in bytes read, told to the bar as bytes on disk (a compressed file is smaller)."""

    def __init__(self, progress: Progress, factor: float) -> None:
        self.progress, self.factor, self.told, self.seen = progress, factor, 0, 0

    def update(self, n: int) -> None:
        self.seen += n
        due = int(self.seen * self.factor)
        self.progress.update(due - self.told)
        self.told = due

    def set_postfix_str(self, text: str) -> None:
        self.progress.set_postfix_str(text)


class _Silent:
    def update(self, n: int) -> None:
        return None

    def set_postfix_str(self, text: str) -> None:
        return None


def summary(tally: Tally) -> Iterator[str]:
    yield f"{tally.files} files read, {tally.resources} resources and messages stored, {len(tally.failures)} failed"
    for failure in tally.failures[:SHOWN_FAILURES]:
        yield f"  {failure.file} {failure.where}: HTTP {failure.status} {failure.reason}"
    if len(tally.failures) > SHOWN_FAILURES:
        yield f"  ... and {len(tally.failures) - SHOWN_FAILURES} more (--report FILE lists them all)"


async def run(arguments: argparse.Namespace, settings: Settings | None = None) -> Tally:
    directory: Path = arguments.directory
    settings = settings or Settings()
    if not arguments.check_references:
        settings = settings.model_copy(update={"referential_integrity": False})
    app = create_app(settings)
    reason = f"import of {directory.name or 'a directory'} with app.load"
    ctx = RequestContext(app.state.base_url, SystemPrincipal("loader", reason), "loader")
    state = LoadState(arguments.state or directory / STATE_FILE, fresh=arguments.restart)
    loader = Loader(app.state.engine, ctx, app.state.kith, arguments.chunk)
    total = sum(p.stat().st_size for p in discover(directory, state.path))
    try:
        with tqdm(total=total, unit="B", unit_scale=True, disable=arguments.quiet, file=sys.stderr) as bar:
            return await loader.load(directory, state, bar)
    finally:
        await app.state.security.close()
        await app.state.database.dispose()


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="directory of .ndjson, .json and .xml files")
    parser.add_argument("--state", type=Path, help=f"progress file (default: DIR/{STATE_FILE})")
    parser.add_argument("--restart", action="store_true", help="ignore the progress of earlier runs")
    parser.add_argument("--chunk", type=int, default=500, help="NDJSON lines per transaction (500)")
    parser.add_argument("--report", type=Path, help="write every failure to this file as JSON lines")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--check-references",
        action="store_true",
        help="refuse resources whose local references name nothing (off: files come in name order)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if not arguments.directory.is_dir():
        print(f"{arguments.directory} is not a directory", file=sys.stderr)
        return 2
    tally = asyncio.run(run(arguments))
    for line in summary(tally):
        print(line)
    if arguments.report:
        arguments.report.write_bytes(b"".join(orjson.dumps(asdict(f)) + b"\n" for f in tally.failures))
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
