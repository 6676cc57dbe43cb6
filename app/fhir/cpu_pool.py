"""Worker processes for work that needs only the CPU: validating a transaction's resources, reading a
KITH message. One Python process runs on one core at a time (the GIL); this lets a server process use
more, which matters most on SQLite, served by a single process (CPU_PROCESSES, app/config.py).

Only pure functions go here: module-level, with picklable arguments and results, reading no storage (the
engine and its access policy stay in the server process). A worker that dies (killed, out of memory)
breaks the pool; the call in hand then runs in this process and the next call gets a fresh pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache
from typing import Any, TypeVar

from app import gc_tuning
from app.fhir.outcome import FhirError
from app.fhir.registry import Registry
from app.fhir.validate import validate_resource

log = logging.getLogger("helsebro.cpu_pool")

R = TypeVar("R")


class CpuPool:
    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a CpuPool needs at least one process")
        self.processes = processes
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process has threads (database drivers, the checkpointer) that a
        # forked child would inherit in whatever state they were in.
        return ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_prepare_worker
        )

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        """fn(*args) in a worker process; its exceptions are raised here."""
        try:
            call = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        except (RecursionError, pickle.PicklingError):
            # Nested deeper than pickle goes (a hostile resource ~300 extensions deep, which JSON parsing
            # still takes): done here, where validation refuses it with its own 400.
            return fn(*args)
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, _call, call)
        except BrokenProcessPool:
            log.warning("a CPU worker process died; the pool is started again")
            if self._executor is executor:
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            return fn(*args)

    async def warm(self) -> None:
        """Start every worker now (each imports the FHIR models, ~1.5 s), not on the first requests."""
        await asyncio.gather(*(self.run(_ready) for _ in range(self.processes)))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def run_cpu_bound(pool: CpuPool | None, fn: Callable[..., R], *args: Any) -> R:
    """fn(*args) in the pool when there is one, else in this process."""
    if pool is None:
        return fn(*args)
    return await pool.run(fn, *args)


@cache
def _registry() -> Registry:
    # Validation reads only the resource types and their models, which Registry.standard() holds in
    # full (domain packs add search parameters, never types).
    return Registry.standard()


def _prepare_worker() -> None:
    _registry()
    gc_tuning.freeze_and_tune()


def _ready() -> bool:
    return True


def _call(call: bytes) -> Any:
    fn, args = pickle.loads(call)
    return fn(*args)


def validate_many(resources: list[Any]) -> list[FhirError | None]:
    """validate_resource of each, as a verdict (None: valid), without the endpoint's expected type:
    the caller checks that itself (app/fhir/validate.check_header) before it uses a verdict."""
    verdicts: list[FhirError | None] = []
    for resource in resources:
        try:
            validate_resource(_registry(), resource)
            verdicts.append(None)
        except FhirError as error:
            verdicts.append(error)
    return verdicts
