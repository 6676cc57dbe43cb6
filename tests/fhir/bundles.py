"""Builders for batch and transaction Bundles in the tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from tests.fhir.fixtures import FHIR_JSON


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def put_each(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    """A Bundle that PUTs every resource at its own id."""
    return bundle(*(put(f"{r['resourceType']}/{r['id']}", r) for r in resources), kind=kind)


def post(
    resource: dict[str, Any], full_url: str | None = None, if_none_exist: str | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    entry: dict[str, Any] = {"resource": resource, "request": request}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put(
    url: str, resource: dict[str, Any], if_match: str | None = None, full_url: str | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {"method": "PUT", "url": url}
    if if_match:
        request["ifMatch"] = if_match
    entry: dict[str, Any] = {"resource": resource, "request": request}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def call(method: str, url: str, if_match: str | None = None) -> dict[str, Any]:
    request = {"method": method, "url": url}
    if if_match:
        request["ifMatch"] = if_match
    return {"request": request}


async def send(client: httpx.AsyncClient, body: dict[str, Any], prefer: str | None = None) -> httpx.Response:
    headers = {**FHIR_JSON, "Prefer": f"return={prefer}"} if prefer else FHIR_JSON
    return await client.post("/", content=orjson.dumps(body), headers=headers)


def statuses(response: httpx.Response) -> list[str]:
    return [e["response"]["status"] for e in response.json()["entry"]]


def location_id(entry: dict[str, Any]) -> str:
    """The id in a response entry's location (Type/id/_history/n)."""
    return str(entry["response"]["location"].split("/")[1])


def organization(value: str, system: str = "https://github.com/synthetichealth/synthea") -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": system, "value": value}],
        "name": f"Organisasjon {value}",
    }


def encounter(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": subject},
        **extra,
    }
