"""The access log: method, route template, status, duration; never ids, query strings or bodies."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from tests.fhir.fixtures import FHIR_JSON, patient


async def test_access_log_holds_no_identifiers(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fnr = "13897250017"
    body = {**patient(fnr=fnr), "id": fnr}  # a client that uses the fødselsnummer as id
    with caplog.at_level(logging.INFO, logger="helsebro.access"):
        await client.put(f"/Patient/{fnr}", content=orjson.dumps(body), headers=FHIR_JSON)
        await client.get(f"/Patient/{fnr}")
        await client.delete(f"/Patient?identifier={fnr}")
        await client.get(f"/unknown/{fnr}/route?x={fnr}")
    assert fnr not in caplog.text
    assert "Kari" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "helsebro.access"]
    assert lines[0].startswith("PUT /Patient/{res_id} 201")
    assert lines[1].startswith("GET /Patient/{res_id} 200")
    assert lines[2].startswith("DELETE /Patient 200")
    assert lines[3].startswith("GET (no route) 404")


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    generated = await client.get("/metadata")
    assert generated.headers["x-request-id"]
    echoed = await client.get("/metadata", headers={"X-Request-Id": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
