"""Worker processes for CPU-only work (app/fhir/cpu_pool.py): the verdicts made there are the ones made
here, errors come back whole, a dead worker costs no request, and transactions validated there behave as
those validated in the server process (both databases)."""

from __future__ import annotations

import copy
import json
import os
import pickle
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.fhir.cpu_pool import CpuPool, run_cpu_bound, validate_many
from app.fhir.outcome import Category, FhirError, Issue
from app.fhir.registry import Registry
from app.fhir.validate import validate_resource
from tests.conftest import app_client
from tests.databases import TestDatabase
from tests.fhir.bundles import bundle, call, post, put, urn
from tests.fhir.fixtures import FHIR_JSON, observation, patient
from tests.security.conftest import seeded_world

REGISTRY = Registry.standard()


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[CpuPool]:
    cpu = CpuPool(1)
    await cpu.warm()
    yield cpu
    cpu.close()


def _outcome(resource: Any) -> dict[str, Any] | None:
    try:
        validate_resource(REGISTRY, resource)
    except FhirError as error:
        return error.outcome()
    return None


def _corpus() -> list[Any]:
    """Valid resources and each kind of failure validate_resource knows."""
    no_code = observation()
    del no_code["code"]
    bad_status = {**observation(), "status": "finished"}  # outside the required value set
    bad_extension = patient(extension=[{"url": "http://example.org/x", "valueString": ""}])
    good_extension = patient(extension=[{"url": "http://example.org/x", "valueString": "ja"}])
    deep: dict[str, Any] = {"resourceType": "Basic", "code": {"text": "x"}}
    node = deep
    for _ in range(120):
        node["extension"] = [{"url": "http://example.org/d", "extension": []}]
        node = node["extension"][0]
    return [
        patient(),
        observation(),
        good_extension,
        no_code,
        bad_status,
        bad_extension,
        {"resourceType": "Patient", "id": "not valid!"},
        {"resourceType": "NoSuchType"},
        {"resourceType": "Patient", "name": []},
        {"resourceType": "Patient", "birthDate": "1980-13-45"},
        deep,
        ["not", "an", "object"],
    ]


def test_validate_many_gives_the_verdicts_of_validate_resource() -> None:
    corpus = _corpus()
    verdicts = validate_many(copy.deepcopy(corpus))
    assert [v.outcome() if v is not None else None for v in verdicts] == [_outcome(r) for r in corpus]
    assert verdicts[:3] == [None, None, None]
    assert all(v is not None for v in verdicts[3:])


def test_a_fhir_error_pickles_whole() -> None:
    error = FhirError(
        Category.INVALID,
        "first",
        "value",
        ("Patient.name",),
        [Issue("second", "code-invalid", ("Patient.gender",))],
        {"Retry-After": "1"},
    )
    again = pickle.loads(pickle.dumps(error))
    assert again == error
    assert again.status == 400
    assert again.outcome() == error.outcome()


async def test_the_pool_runs_in_another_process_and_its_errors_come_back(pool: CpuPool) -> None:
    assert await pool.run(os.getpid) != os.getpid()
    corpus = _corpus()
    verdicts = await pool.run(validate_many, corpus)
    assert [v.outcome() if v is not None else None for v in verdicts] == [_outcome(r) for r in corpus]
    with pytest.raises(FhirError) as info:
        await pool.run(validate_resource, REGISTRY, {"resourceType": "Patient", "id": "not valid!"})
    assert info.value.category is Category.INVALID
    assert "id" in info.value.message


def _nested(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/x", "valueString": "v"}
    for _ in range(levels):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


async def test_what_is_too_deep_to_send_is_validated_here(pool: CpuPool) -> None:
    """JSON parsing takes nesting that pickle cannot send; validation refuses it, here, with its 400."""
    deep = _nested(300)
    with pytest.raises(RecursionError):
        pickle.dumps(deep)
    (verdict,) = await pool.run(validate_many, [deep])
    assert verdict is not None
    assert "nested" in verdict.message


async def test_without_a_pool_the_work_is_done_here() -> None:
    assert await run_cpu_bound(None, os.getpid) == os.getpid()


def _exit_unless_in(pid: int) -> int:
    """Kills a worker process; in the process `pid` it answers."""
    if os.getpid() != pid:
        os._exit(1)
    return pid


async def test_a_dead_worker_costs_the_call_nothing_and_the_next_gets_a_fresh_pool() -> None:
    cpu = CpuPool(1)
    try:
        assert await cpu.run(_exit_unless_in, os.getpid()) == os.getpid()  # done here after the death
        assert await cpu.run(os.getpid) != os.getpid()  # a new worker
    finally:
        cpu.close()


def test_a_pool_needs_a_process() -> None:
    with pytest.raises(ValueError, match="at least one process"):
        CpuPool(0)


# -- transactions validated in the pool, through HTTP ---------------------------------------------------------


def _five_patients() -> list[dict[str, Any]]:
    return [post(patient(given=f"Nr{i}")) for i in range(5)]


async def _answer(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, Any]:
    # json, not orjson: orjson refuses to write the deeply nested resource
    response = await http.post("/", content=json.dumps(body).encode(), headers=FHIR_JSON)
    return response.status_code, response.json()


async def test_transactions_validated_in_the_pool_answer_as_those_validated_here(
    backend: str, session_databases: dict[str, TestDatabase], client: httpx.AsyncClient
) -> None:
    """The same bundles to a server with CPU_PROCESSES=1 and to one without; the refusals must be the
    same, entry for entry, and a valid bundle stored whole."""
    invalid_third = _five_patients()
    invalid_third[2] = post({**patient(), "gender": "mann"})  # outside the required value set
    wrong_type = _five_patients()
    wrong_type[1] = put("Observation/x", {**patient(), "id": "x"})  # a Patient sent to Observation
    bad_url_first = _five_patients()
    bad_url_first.insert(1, call("POST", ""))  # malformed before the invalid resource: it is reported
    bad_url_first[3] = post({"resourceType": "Patient", "name": []})
    too_deep = [*_five_patients(), post(_nested(300))]  # more than pickle can send to the worker
    refused = [bundle(*invalid_third), bundle(*wrong_type), bundle(*bad_url_first), bundle(*too_deep)]
    expected = [await _answer(client, b) for b in refused]
    assert [status for status, _ in expected] == [400, 400, 400, 400]
    async with app_client(session_databases[backend], cpu_processes=1) as (http, app):
        try:
            assert app.state.engine.svc.cpu is not None
            for body, answer in zip(refused, expected, strict=True):
                assert await _answer(http, body) == answer
            assert (await http.get("/Patient", params={"_summary": "count"})).json()["total"] == 0
            first = urn()
            patients = [post(patient(given="Nr0"), first), *_five_patients()[1:]]
            status, stored = await _answer(http, bundle(*patients, post(observation(subject=first))))
            assert status == 200, stored
            assert [e["response"]["status"] for e in stored["entry"]] == ["201 Created"] * 6
            assert (await http.get("/Patient", params={"_summary": "count"})).json()["total"] == 5
        finally:
            app.state.engine.svc.cpu.close()


async def test_transactions_validated_in_the_pool_keep_the_access_policy(
    backend: str, session_databases: dict[str, TestDatabase], dev_key_file: Path, mint: Callable[..., str]
) -> None:
    """Validation in a worker decides nothing about access: in the secured scenario, Kari's GP writes
    her observations in one transaction; a stranger organisation and another citizen are refused, and
    nothing of theirs is stored."""
    settings = {
        "auth_mode": "jwt",
        "auth_dev_issuer": True,
        "auth_dev_key_file": str(dev_key_file),
        "cpu_processes": 1,
    }
    async with app_client(session_databases[backend], **settings) as (http, app):
        try:
            world = await seeded_world(http, mint)
            body = json.dumps(bundle(*(post(observation("Patient/kari")) for _ in range(4)))).encode()

            async def kari_observations() -> int:
                found = await http.get(
                    "/Observation?subject=Patient/kari&_summary=count", headers=world.system
                )
                assert found.status_code == 200, found.text
                return int(found.json()["total"])

            before = await kari_observations()
            for who in (world.other, world.nils):
                refused = await http.post("/", content=body, headers={**FHIR_JSON, **who})
                assert refused.status_code == 403, refused.text
            assert await kari_observations() == before
            written = await http.post("/", content=body, headers={**FHIR_JSON, **world.gp})
            assert written.status_code == 200, written.text
            assert await kari_observations() == before + 4
        finally:
            assert app.state.engine.svc.cpu is not None
            app.state.engine.svc.cpu.close()
