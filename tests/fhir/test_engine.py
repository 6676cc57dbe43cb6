"""The engine API refuses to run without a principal, at every entry point, before anything is touched;
with one (a SystemPrincipal naming why the server acts) the same calls work."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from app.fhir.context import MissingPrincipal, RequestContext, SystemPrincipal
from app.fhir.engine import ENTRY_POINTS, Engine
from app.fhir.interactions.export import ExportRequest
from app.fhir.interactions.search import SearchRequest
from app.fhir.outcome import FhirError

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female"}
JSON_PATCH = b'[{"op": "replace", "path": "/gender", "value": "male"}]'
BUNDLE = {
    "resourceType": "Bundle",
    "type": "batch",
    "entry": [{"request": {"method": "GET", "url": "Patient/p1"}}],
}

# Arguments after the context, per entry point: real requests, so that a missing check would act.
ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "read": ("Patient", "p1"),
    "read_resource": ("Patient/p1",),
    "vread": ("Patient", "p1", "1"),
    "search_bundle": (SearchRequest(("Patient",), [], "Patient"),),
    "search": ("Patient", [], 10),
    "history_bundle": ("Patient", "p1", {}),
    "create": ("Patient", PATIENT),
    "update": ("Patient", "p1", PATIENT),
    "conditional_update": ("Patient", "_id=p1", PATIENT),
    "patch": ("Patient", "p1", "application/json-patch+json", JSON_PATCH),
    "delete": ("Patient", "p1"),
    "conditional_delete": ("Patient", "_id=p1"),
    "transaction": (BUNDLE,),
    "bundle_response": (BUNDLE, "representation"),
    "reindex": ("Patient",),
    "cpu_bound": (len, "abc"),  # a pure function, in the worker processes when there are some
    "start_reindex": ("Patient", "http://fhir.test/Patient/$reindex"),
    "start_export": (ExportRequest("system", None, [], False), "http://fhir.test/$export"),
    # JOB stands for the id of a job the test starts first
    "job_status": ("JOB",),
    "cancel_job": ("JOB",),
    "job_file": ("JOB", 1),
}


async def _arguments(engine: Engine, system: RequestContext, name: str) -> tuple[Any, ...]:
    arguments = ARGUMENTS[name]
    if "JOB" not in arguments:
        return arguments
    job_id = await engine.start_export(system, *ARGUMENTS["start_export"])
    return tuple(job_id if a == "JOB" else a for a in arguments)


def test_every_entry_point_is_listed() -> None:
    public = {name for name in vars(Engine) if not name.startswith("_") and callable(getattr(Engine, name))}
    assert public == set(ENTRY_POINTS) == set(ARGUMENTS)


@pytest.mark.parametrize("name", ENTRY_POINTS)
async def test_an_entry_point_without_a_principal_is_refused(app: FastAPI, name: str) -> None:
    engine: Engine = app.state.engine
    system = RequestContext("http://fhir.test", SystemPrincipal("test", "seed one patient"))
    await engine.update(system, "Patient", "p1", PATIENT)
    arguments = await _arguments(engine, system, name)
    nobody = RequestContext("http://fhir.test", None)
    with pytest.raises(MissingPrincipal):
        await getattr(engine, name)(nobody, *arguments)
    # Nothing was read or changed on its behalf.
    current = await engine.read(system, "Patient", "p1")
    assert current.version == 1


@pytest.mark.parametrize("name", ENTRY_POINTS)
async def test_an_entry_point_with_a_system_principal_runs(app: FastAPI, name: str) -> None:
    engine: Engine = app.state.engine
    system = RequestContext("http://fhir.test", SystemPrincipal("test", "exercise the engine API"))
    await engine.update(system, "Patient", "p1", PATIENT)
    arguments = await _arguments(engine, system, name)
    if name == "job_file":  # the job has not run, so it has no file yet: the call looked for it
        with pytest.raises(FhirError, match="No such file"):
            await engine.job_file(system, *arguments)
        return
    await getattr(engine, name)(system, *arguments)
