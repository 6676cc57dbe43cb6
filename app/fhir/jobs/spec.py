"""What a job kind is: a pure description of one step at a time, so the worker can checkpoint, throttle,
cancel and resume every kind alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.fhir.context import RequestContext
from app.fhir.service import FhirService


@dataclass(frozen=True)
class JobConfig:
    poll_seconds: float = 1.0
    # A step renews the lease; a process that stops renewing loses the job to another after this long.
    lease_seconds: float = 60.0
    # Share of wall time a running job may use: after a step that took t seconds the worker rests
    # t * (1 - duty) / duty, so interactive requests keep their latency while a long job runs.
    duty_cycle: float = 0.5
    batch_size: int = 500  # resources per step ($reindex batch, $export file)
    retention_hours: float = 24.0  # finished jobs and their files are dropped after this


@dataclass(frozen=True)
class Output:
    """A file the step produced (bulk export NDJSON)."""

    res_type: str
    count: int
    content: bytes


@dataclass(frozen=True)
class Step:
    state: dict[str, Any]  # where the next step (or a resumed run) goes on from
    progress: str  # counts only, never content: X-Progress
    output: Output | None = None
    result: dict[str, Any] | None = None  # set on the last step: what the finished job answers


# One step of a kind: (service, context of the job's principal, parameters, state) -> Step.
StepFunction = Callable[[FhirService, RequestContext, dict[str, Any], dict[str, Any], int], Awaitable[Step]]


@dataclass(frozen=True)
class JobKind:
    name: str
    step: StepFunction
