"""Bundles the server writes are valid FHIR JSON: no empty arrays (R4 2.6.2), even with nothing to list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from tests.fhir.fixtures import FHIR_JSON, patient


def empty_arrays(node: Any, path: str = "$") -> Iterator[str]:
    """JSON paths of the empty arrays (and objects) in `node`."""
    if isinstance(node, dict):
        if not node:
            yield path
        for key, value in node.items():
            yield from empty_arrays(value, f"{path}.{key}")
    elif isinstance(node, list):
        if not node:
            yield path
        for index, value in enumerate(node):
            yield from empty_arrays(value, f"{path}[{index}]")


async def test_empty_results_have_no_empty_entry_array(client: httpx.AsyncClient) -> None:
    assert (
        await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    ).status_code == 201
    replies = {
        "no match": await client.get("/Patient?family=Nobody"),
        "_summary=count": await client.get("/Patient?_summary=count"),
        "_count=0": await client.get("/Patient?_count=0"),
        "empty type history": await client.get("/Observation/_history"),
        "empty system search": await client.get("/?_type=Observation"),
        "metadata": await client.get("/metadata"),
    }
    for kind, reply in replies.items():
        assert reply.status_code == 200, (kind, reply.text)
        body = reply.json()
        assert list(empty_arrays(body)) == [], kind
        if body["resourceType"] == "Bundle":
            assert "entry" not in body, kind
    assert replies["_summary=count"].json()["total"] == 1
    assert replies["_count=0"].json()["total"] == 1


async def test_an_empty_batch_or_transaction_gets_an_empty_response(client: httpx.AsyncClient) -> None:
    for bundle_type in ("batch", "transaction"):
        bundles: list[dict[str, Any]] = [
            {"resourceType": "Bundle", "type": bundle_type},
            {"resourceType": "Bundle", "type": bundle_type, "entry": []},
        ]
        for bundle in bundles:
            reply = await client.post("/", content=orjson.dumps(bundle), headers=FHIR_JSON)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["type"] == f"{bundle_type}-response"
            assert list(empty_arrays(body)) == []
