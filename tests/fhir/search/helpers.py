"""Shared builders and helpers for the search tests: small synthetic resources with fixed ids, written
through the API with PUT, and short accessors for what a search Bundle returned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from app.resources.no_basis.identifiers import FNR_SYSTEM, HPR_SYSTEM, synthetic_fnr
from tests.fhir.bundles import put_each
from tests.fhir.fixtures import FHIR_JSON

Resource = dict[str, Any]
Params = Sequence[tuple[str, str]] | Mapping[str, str] | str

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
HEART_RATE = {"system": LOINC, "code": "8867-4", "display": "Heart rate"}
BODY_WEIGHT = {"system": LOINC, "code": "29463-7", "display": "Body weight"}


async def put(client: httpx.AsyncClient, resource: Resource) -> Resource:
    """Create or update `resource` under its own id; returns the stored resource."""
    url = f"/{resource['resourceType']}/{resource['id']}"
    response = await client.put(url, content=orjson.dumps(resource), headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text
    stored: Resource = response.json()
    return stored


async def put_all(client: httpx.AsyncClient, *resources: Resource) -> list[Resource]:
    """PUT every resource in one transaction: they may refer to one another in any order (a local
    reference must name a resource that exists when the unit of work ends)."""
    if not resources:
        return []
    response = await client.post("/", content=orjson.dumps(put_each(*resources)), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return [entry["resource"] for entry in response.json()["entry"]]


async def get(
    client: httpx.AsyncClient, path: str, params: Params = (), headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """GET `path` with the query given as a raw string, a mapping or (name, value) pairs."""
    url = path if path.startswith(("/", "http")) else f"/{path}"
    if isinstance(params, str):
        return await client.get(f"{url}?{params}" if params else url, headers=headers)
    items: list[tuple[str, str | int | float | bool | None]] = list(
        params.items() if isinstance(params, Mapping) else params
    )
    if not items:  # httpx would replace a query already in `url` (a Bundle link) with an empty one
        return await client.get(url, headers=headers)
    return await client.get(url, params=items, headers=headers)


async def search(
    client: httpx.AsyncClient, path: str, params: Params = (), headers: Mapping[str, str] | None = None
) -> Resource:
    """GET a search and return the searchset Bundle (asserting 200)."""
    response = await get(client, path, params, headers)
    assert response.status_code == 200, response.text
    bundle: Resource = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return bundle


def entries(bundle: Resource, mode: str = "match") -> list[Resource]:
    return [e for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def ids(bundle: Resource, mode: str = "match") -> list[str]:
    """Ids of the entries with the given search mode, in Bundle order."""
    return [e["resource"]["id"] for e in entries(bundle, mode)]


def keys(bundle: Resource, mode: str = "match") -> list[str]:
    """'Type/id' of the entries with the given search mode, in Bundle order."""
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries(bundle, mode)]


def link(bundle: Resource, relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item["relation"] == relation:
            url: str = item["url"]
            return url
    return None


def require_link(bundle: Resource, relation: str) -> str:
    url = link(bundle, relation)
    assert url is not None, f"no {relation} link"
    return url


def warnings(bundle: Resource) -> list[str]:
    """Diagnostics of the warning issues of the OperationOutcome entry (search mode "outcome")."""
    found = []
    for entry in entries(bundle, "outcome"):
        outcome = entry["resource"]
        assert outcome["resourceType"] == "OperationOutcome"
        for issue in outcome["issue"]:
            assert issue["severity"] == "warning"
            found.append(str(issue.get("diagnostics", "")))
    return found


async def search_ids(client: httpx.AsyncClient, path: str, params: Params = ()) -> set[str]:
    return set(ids(await search(client, path, params)))


# -- builders ---------------------------------------------------------------------------------------------


def patient(res_id: str, family: str = "Nordmann", given: str | None = "Kari", **extra: Any) -> Resource:
    name: dict[str, Any] = {"family": family}
    if given is not None:
        name["given"] = [given]
    body: Resource = {
        "resourceType": "Patient",
        "id": res_id,
        "identifier": [{"system": FNR_SYSTEM, "value": synthetic_fnr(13, 9, 1972, 100 + len(res_id) % 50)}],
        "name": [name],
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}  # identifier=None: no identifier at all


def practitioner(res_id: str, family: str, given: str = "Lege", hpr: str | None = None) -> Resource:
    body: Resource = {
        "resourceType": "Practitioner",
        "id": res_id,
        "name": [{"family": family, "given": [given]}],
    }
    if hpr:
        body["identifier"] = [{"system": HPR_SYSTEM, "value": hpr}]
    return body


def practitioner_role(res_id: str, practitioner_id: str) -> Resource:
    return {
        "resourceType": "PractitionerRole",
        "id": res_id,
        "practitioner": {"reference": f"Practitioner/{practitioner_id}"},
    }


def organization(res_id: str, name: str, **extra: Any) -> Resource:
    return {"resourceType": "Organization", "id": res_id, "name": name, **extra}


def observation(
    res_id: str,
    subject: str | None = "Patient/p1",
    code: Mapping[str, str] | None = None,
    **extra: Any,
) -> Resource:
    body: Resource = {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [dict(code or HEART_RATE)]},
    }
    if subject is not None:
        body["subject"] = {"reference": subject}
    body.update(extra)
    return body


def quantity(value: float, code: str = "/min", unit: str | None = None, system: str = UCUM) -> Resource:
    return {"value": value, "unit": unit or code, "system": system, "code": code}


def condition(res_id: str, subject: str, code: str = "44054006", text: str = "Diabetes") -> Resource:
    return {
        "resourceType": "Condition",
        "id": res_id,
        "subject": {"reference": subject},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": text}], "text": text},
    }


def encounter(res_id: str, subject: str, **extra: Any) -> Resource:
    return {
        "resourceType": "Encounter",
        "id": res_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": subject},
        **extra,
    }


def medication_request(res_id: str, subject: str, **extra: Any) -> Resource:
    return {
        "resourceType": "MedicationRequest",
        "id": res_id,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Paracetamol 500 mg"},
        "subject": {"reference": subject},
        **extra,
    }
