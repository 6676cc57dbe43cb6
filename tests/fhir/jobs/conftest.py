"""Helpers for asynchronous-job tests: the app's job worker running, and polling a status URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.fhir.jobs.worker import JobWorker

TIMEOUT = 30.0


@asynccontextmanager
async def running_jobs(app: FastAPI) -> AsyncIterator[JobWorker]:
    """The app's job worker, running for the block (ASGITransport runs no lifespan)."""
    jobs: JobWorker = app.state.jobs
    jobs.start()
    try:
        yield jobs
    finally:
        await jobs.stop()


@pytest.fixture
async def worker(app: FastAPI) -> AsyncIterator[JobWorker]:
    async with running_jobs(app) as jobs:
        yield jobs


async def wait_finished(
    http: httpx.AsyncClient, status_url: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """Poll a status URL until the job is no longer in progress (202)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        response = await http.get(status_url, headers=headers)
        if response.status_code != 202:
            return response
        assert "X-Progress" in response.headers
        assert response.headers["Retry-After"]
        assert time.monotonic() < deadline, "the job did not finish in time"
        await asyncio.sleep(0.05)


def ndjson(body: bytes) -> list[dict[str, Any]]:
    lines = body.split(b"\n")
    assert lines[-1] == b"", "NDJSON ends with a newline"
    return [orjson.loads(line) for line in lines[:-1]]
