"""AuditSink's contract for reads in an HTTP request: the request's events are queued together when its
response starts (one group commit for $summary's many searches), the response waits for them, and a
request that never answers still has them written."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

from app.fhir.context import RequestContext
from app.security import authn
from app.security.audit_sink import AuditSink
from app.security.audit_writer import AUDIT_DEFERRED, AUDIT_WAITS, AuditWriter
from tests.security.test_audit_writer import record, request_id


class Batches:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, events: Sequence[dict[str, Any]]) -> None:
        self.batches.append([request_id(e) for e in events])


def sink_with(store: Batches) -> AuditSink:
    """A sink whose writer stores into `store` (the service is only asked for its database's appender)."""
    service = SimpleNamespace(repo=SimpleNamespace(db=SimpleNamespace(appender=None)))
    sink = AuditSink(cast(Any, service))
    sink.writer = AuditWriter(store, linger_s=0)
    return sink


def http_request() -> RequestContext:
    """A request as authn starts it: its read events deferred to its response."""
    return RequestContext("http://fhir.test", object(), "r1", scratch={AUDIT_DEFERRED: []})


async def test_an_http_requests_reads_are_one_batch_and_its_response_waits_for_it() -> None:
    store = Batches()
    sink, ctx = sink_with(store), http_request()
    for n in range(9):
        await sink.after(ctx, record(n))
    await asyncio.sleep(0)
    assert store.batches == []  # nothing queued before the response starts
    waits = ctx.scratch.pop(AUDIT_WAITS)
    assert len(waits) == 1
    await asyncio.gather(*waits)  # what authn does when the response starts
    assert store.batches == [[f"req-{n}" for n in range(9)]]
    await sink.after(ctx, record(9))  # after the response started: queued on its own
    await asyncio.gather(*ctx.scratch.pop(AUDIT_WAITS))
    assert store.batches[-1] == ["req-9"]
    await sink.writer.close()


async def test_outside_an_http_request_each_read_is_queued_at_once() -> None:
    store = Batches()
    sink = sink_with(store)
    ctx = RequestContext("http://fhir.test", object(), "job")  # a job's or a delivery's context
    await sink.after(ctx, record(1))
    await asyncio.gather(*ctx.scratch.pop(AUDIT_WAITS))
    assert store.batches == [["req-1"]]
    await sink.writer.close()


async def test_a_request_that_never_answers_still_has_its_reads_written() -> None:
    store = Batches()
    sink, ctx = sink_with(store), http_request()
    await sink.after(ctx, record(3))
    authn._write_unawaited(ctx.scratch.pop(AUDIT_WAITS))  # what authn does when the request ends unanswered
    for _ in range(20):
        await asyncio.sleep(0)
    assert store.batches == [["req-3"]]
    await sink.writer.close()
