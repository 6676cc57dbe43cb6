"""Building blocks of the Postman collection: requests, their test scripts, FHIR bodies."""

from __future__ import annotations

from typing import Any

import orjson

FHIR_JSON = "application/fhir+json"


def js(source: str) -> list[str]:
    return source.strip("\n").split("\n")


def check(
    status: int,
    resource_type: str | None = None,
    *facts: tuple[str, str, str],
    save: dict[str, str] | None = None,
) -> list[str]:
    """Test script lines: the status, the body's resourceType, and facts (title, JS expression over
    `body`, JS expression it must equal); `save` sets collection variables from JS expressions."""
    lines = [f'pm.test("status {status}", () => pm.response.to.have.status({status}));']
    if resource_type is not None:
        lines.append("const body = pm.response.json();")
        lines.append(
            f'pm.test("a {resource_type}", () => pm.expect(body.resourceType).to.eql("{resource_type}"));'
        )
    for title, actual, expected in facts:
        lines.append(
            f"pm.test({orjson.dumps(title).decode()}, () => pm.expect({actual}).to.eql({expected}));"
        )
    for name, expression in (save or {}).items():
        lines.append(f'pm.collectionVariables.set("{name}", {expression});')
    return lines


def all_created(title: str, count: int) -> tuple[str, str, str]:
    """A fact over a transaction-response: each of its `count` entries answered 201."""
    statuses = ", ".join(['"201"'] * count)
    return (title, "body.entry.map(e => e.response.status.slice(0, 3))", f"[{statuses}]")


def created_id(index: int) -> str:
    """The id a transaction-response's entry `index` was created with (from its location)."""
    return f'body.entry[{index}].response.location.split("/")[1]'


def var(name: str) -> str:
    return f'pm.collectionVariables.get("{name}")'


def request(
    name: str,
    method: str,
    path: str,
    tests: list[str],
    *,
    token: str = "token",
    body: dict[str, Any] | str | None = None,
    headers: dict[str, str] | None = None,
    prerequest: list[str] | None = None,
) -> dict[str, Any]:
    all_headers = {"Authorization": f"Bearer {{{{{token}}}}}", "Accept": FHIR_JSON, **(headers or {})}
    spec: dict[str, Any] = {
        "method": method,
        "header": [{"key": k, "value": v} for k, v in all_headers.items()],
        "url": "{{baseUrl}}" + path,
    }
    if body is not None:
        is_json = not isinstance(body, str)
        raw = orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() if is_json else body
        spec["body"] = {"mode": "raw", "raw": raw}
        if is_json and "Content-Type" not in all_headers:
            spec["header"].append({"key": "Content-Type", "value": FHIR_JSON})
    events = [{"listen": "test", "script": {"type": "text/javascript", "exec": tests}}]
    if prerequest:
        events.insert(0, {"listen": "prerequest", "script": {"type": "text/javascript", "exec": prerequest}})
    return {"name": name, "request": spec, "event": events}


def transaction_request(
    name: str,
    bundle: dict[str, Any],
    created: str,
    *facts: tuple[str, str, str],
    save: dict[str, str],
    token: str = "token",
    prerequest: list[str] | None = None,
) -> dict[str, Any]:
    """POST a transaction Bundle: 200, a Bundle, `facts`, and every entry created (`created` the title)."""
    tests = check(200, "Bundle", *facts, all_created(created, len(bundle["entry"])), save=save)
    return request(name, "POST", "/", tests, token=token, body=bundle, prerequest=prerequest)


def transaction_of(resources: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A transaction creating each resource under its urn:uuid fullUrl (which the others refer to)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for url, r in resources
        ],
    }


def parameters(**values: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": name, f"value{kind}": value} for name, (kind, value) in values.items()],
    }
