"""A real FHIR client (fhirpy) against a real uvicorn server on loopback, on both databases."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from tests.fhir.fixtures import patient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server_url(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_fhirpy_create_read_update_delete(server_url: str) -> None:
    client = AsyncFHIRClient(server_url, extra_headers={"Accept": "application/fhir+json"})
    kari = client.resource(
        "Patient", **{k: v for k, v in patient(given="Åse").items() if k != "resourceType"}
    )
    await kari.save()
    assert kari.id
    assert kari["meta"]["versionId"] == "1"

    fetched = await client.reference("Patient", kari.id).to_resource()
    assert fetched["name"][0]["given"] == ["Åse"]

    fetched["gender"] = "other"
    await fetched.save()
    assert fetched["meta"]["versionId"] == "2"

    await fetched.delete()  # type: ignore[no-untyped-call]
    with pytest.raises(ResourceNotFound):
        await client.reference("Patient", kari.id).to_resource()


async def test_fhirpy_sees_operation_outcomes(server_url: str) -> None:
    client = AsyncFHIRClient(server_url)
    bad = client.resource("Patient", birthDate="not-a-date")
    with pytest.raises(OperationOutcome) as info:
        await bad.save()
    assert "Patient.birthDate" in str(info.value)
