"""AuditWriter: group commit that never answers before the audit row is stored, and never loses one.

The first tests drive the batching logic with a recording store (a pure unit); the last ones store real
AuditEvents on SQLite and PostgreSQL and find them again through the REST search API.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.auditevent import AuditEvent

from app.fhir.service import FhirService
from app.security.audit import AUDIT_FLAG_SYSTEM, AuditRecord, audit_event
from app.security.audit_search import SEARCH_PARAMS as AUDIT_SEARCH_PARAMS
from app.security.audit_writer import AuditWriter, AuditWriterClosed, batch_store, store_audit_events
from app.security.principal import Principal, ScopeSet


class RecordingStore:
    """Records each batch; `gate` (when set up) holds a batch in store() until the test opens it."""

    def __init__(self, fail_when: str | None = None) -> None:
        self.batches: list[list[int]] = []
        self.committed: set[int] = set()
        self.gate: asyncio.Event | None = None
        self.fail_when = fail_when

    async def __call__(self, events: Sequence[dict[str, Any]]) -> None:
        numbers = [int(e["n"]) for e in events]
        self.batches.append(numbers)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)  # a store always yields to the loop at least once
        if self.fail_when is not None and any(e.get("tag") == self.fail_when for e in events):
            raise RuntimeError("database unavailable")
        self.committed.update(numbers)

    @property
    def stored(self) -> list[int]:
        return sorted(n for batch in self.batches for n in batch if n in self.committed)


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def test_concurrent_submits_are_grouped_and_each_returns_after_its_commit() -> None:
    store = RecordingStore()
    writer = AuditWriter(store)
    returned_before_commit: list[int] = []

    async def submit(n: int) -> None:
        await writer.submit({"n": n})
        if n not in store.committed:
            returned_before_commit.append(n)

    await asyncio.gather(*(submit(n) for n in range(200)))
    assert returned_before_commit == []
    assert len(store.batches) < 20
    assert store.stored == list(range(200))  # each exactly once
    await writer.close()


async def test_submissions_accumulate_while_a_batch_is_stored() -> None:
    store = RecordingStore()
    store.gate = asyncio.Event()
    writer = AuditWriter(store)
    first = asyncio.create_task(writer.submit({"n": 0}))
    await until(lambda: store.batches)
    later = [asyncio.create_task(writer.submit({"n": n})) for n in range(1, 51)]
    await until(lambda: writer.pending == 50)
    assert not first.done()  # its batch is not committed yet
    assert not any(task.done() for task in later)
    store.gate.set()
    await asyncio.gather(first, *later)
    assert store.batches == [[0], list(range(1, 51))]  # group commit: two store calls for 51 events
    await writer.close()


@pytest.mark.parametrize(("linger_s", "batches"), [(0.05, [[0, 1, 2]]), (0, [[0], [1, 2]])])
async def test_the_writer_lingers_for_events_on_their_way(linger_s: float, batches: list[list[int]]) -> None:
    """A commit costs much more than an event in it: events arriving within the linger share one."""
    store = RecordingStore()
    writer = AuditWriter(store, linger_s=linger_s)
    first = asyncio.create_task(writer.submit({"n": 0}))
    await asyncio.sleep(0.01)
    rest = [asyncio.create_task(writer.submit({"n": n})) for n in (1, 2)]
    await asyncio.gather(first, *rest)
    assert store.batches == batches
    await writer.close()


async def test_max_batch_bounds_each_store_call() -> None:
    store = RecordingStore()
    writer = AuditWriter(store, max_batch=7)
    await asyncio.gather(*(writer.submit({"n": n}) for n in range(30)))
    assert all(len(batch) <= 7 for batch in store.batches)
    assert store.stored == list(range(30))
    await writer.close()


async def test_a_failed_batch_fails_its_waiters_and_the_next_batch_still_works() -> None:
    store = RecordingStore(fail_when="poison")
    store.gate = asyncio.Event()
    writer = AuditWriter(store)
    doomed = [asyncio.create_task(writer.submit({"n": 0, "tag": "poison"}))]
    await until(lambda: store.batches)
    doomed += [asyncio.create_task(writer.submit({"n": n, "tag": "poison"})) for n in (1, 2)]
    await until(lambda: writer.pending == 2)
    store.gate.set()
    results = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "database unavailable" for r in results)
    assert store.committed == set()

    await asyncio.gather(*(writer.submit({"n": n}) for n in range(10, 20)))
    assert store.stored == list(range(10, 20))
    await writer.close()


async def test_a_cancelled_waiter_does_not_withdraw_its_event() -> None:
    store = RecordingStore()
    store.gate = asyncio.Event()
    writer = AuditWriter(store)
    task = asyncio.create_task(writer.submit({"n": 1}))
    await until(lambda: store.batches)
    task.cancel()
    store.gate.set()
    await writer.close()
    assert store.stored == [1]


async def test_close_flushes_what_is_queued_and_refuses_new_events() -> None:
    store = RecordingStore()
    store.gate = asyncio.Event()
    writer = AuditWriter(store)
    waiters = [asyncio.create_task(writer.submit({"n": n})) for n in range(5)]
    await until(lambda: store.batches)
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0)
    store.gate.set()
    await closing
    await asyncio.gather(*waiters)
    assert store.stored == list(range(5))
    with pytest.raises(AuditWriterClosed):
        await writer.submit({"n": 99})


async def test_a_stopped_task_fails_its_waiters_and_is_restarted() -> None:
    store = RecordingStore()
    store.gate = asyncio.Event()
    writer = AuditWriter(store)
    waiter = asyncio.create_task(writer.submit({"n": 1}))
    await until(lambda: store.batches)
    task = writer._task
    assert task is not None
    task.cancel()  # what loop shutdown does to a background task
    with pytest.raises(AuditWriterClosed):
        await waiter
    store.gate.set()
    await writer.submit({"n": 2})  # a new drain task on the next submit
    assert store.stored == [2]
    await writer.close()


# -- against the database ----------------------------------------------------------------------------

PATIENTS = ("p1", "p2", "p3")


def personnel() -> Principal:
    return Principal(
        kind="personnel",
        subject="sub-lege",
        client_id="ehr-client",
        issuer="https://helseid.test",
        scopes=ScopeSet(),
        name="Lege Legesen",
        hpr="565501872",
        category="LE",
        orgnr="974633574",
    )


def record(n: int) -> AuditRecord:
    patients = (PATIENTS[n % 3], "p1") if n % 7 == 0 and n % 3 != 0 else (PATIENTS[n % 3],)
    return AuditRecord(
        "read",
        "0",
        personnel(),
        patients,
        (("Observation", f"o{n}", 1),),
        request_id=f"req-{n}",
        emergency=n % 50 == 0,
        emergency_reason="akutt" if n % 50 == 0 else None,
    )


def request_id(resource: dict[str, Any]) -> str:
    (entity,) = [e for e in resource["entity"] if e["type"]["code"] == "XrequestId"]
    value: str = entity["what"]["identifier"]["value"]
    return value


async def search(client: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await client.get(f"/AuditEvent?{query}&_total=accurate&_count=1000")
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = orjson.loads(response.content)
    return bundle


async def test_concurrent_audit_events_are_stored_and_searchable(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    svc: FhirService = app.state.fhir
    production = batch_store(svc)
    calls: list[int] = []

    async def counting_store(events: Sequence[dict[str, Any]]) -> None:
        calls.append(len(events))
        await production(events)

    writer = AuditWriter(counting_store)
    records = [record(n) for n in range(300)]
    await asyncio.gather(*(writer.submit(audit_event(r)) for r in records))
    await writer.close()
    assert sum(calls) == 300
    assert len(calls) < 30

    bundle = await search(client, "patient=Patient/p1")
    expected = {r.request_id for r in records if "p1" in r.patients}
    assert bundle["total"] == len(expected)
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert {request_id(r) for r in resources} == expected
    for resource in resources:
        AuditEvent.model_validate(resource)
        assert resource["meta"]["versionId"] == "1"

    flagged = await search(client, f"_tag={AUDIT_FLAG_SYSTEM}|emergency-access")
    assert flagged["total"] == 6  # n = 0, 50, ..., 250
    by_hpr = await search(client, "agent:identifier=urn:oid:2.16.578.1.12.4.1.4.4|565501872&_summary=count")
    assert by_hpr["total"] == 300


async def test_audit_events_share_the_fate_of_the_write_transaction(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    svc: FhirService = app.state.fhir
    event = audit_event(record(1))  # about p2

    async def failing_write() -> None:
        async with svc.repo.writer() as conn:
            await store_audit_events(svc, conn, [event])
            raise RuntimeError("write failed")

    with pytest.raises(RuntimeError, match="write failed"):
        await failing_write()
    assert (await search(client, "patient=Patient/p2"))["total"] == 0

    async with svc.repo.writer() as conn:
        await store_audit_events(svc, conn, [event, audit_event(record(2))])  # p2 and p3
        await store_audit_events(svc, conn, [])
    bundle = await search(client, "patient=Patient/p2")
    assert bundle["total"] == 1
    assert request_id(bundle["entry"][0]["resource"]) == "req-1"


async def test_the_server_indexes_audit_events_leanly(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The AuditEvent search parameters in force (and advertised) are the audit trail's, not all 24."""
    svc: FhirService = app.state.fhir
    assert set(svc.registry.types["AuditEvent"].search_params) <= AUDIT_SEARCH_PARAMS
    statement = orjson.loads((await client.get("/metadata")).content)
    (audit,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert {p["name"] for p in audit["searchParam"]} <= AUDIT_SEARCH_PARAMS
    assert "patient" in {p["name"] for p in audit["searchParam"]}


async def test_the_drain_task_runs_in_a_context_of_its_own() -> None:
    """Started by whichever request audits first, the task must not keep that request's context (its
    principal, its unit of work's batches) for the life of the process."""
    request_value: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_value", default=None)
    seen: list[str | None] = []

    async def store(events: Sequence[dict[str, Any]]) -> None:
        seen.append(request_value.get())

    writer = AuditWriter(store)
    request_value.set("the first request's")
    await writer.submit({"n": 1})
    assert seen == [None]
    await writer.close()
