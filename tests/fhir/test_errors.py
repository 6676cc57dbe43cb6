"""Every error is an OperationOutcome with the right status; no stack traces or patient data leak."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.fhir.hooks import Stage, WriteEvent
from app.fhir.outcome import fhir_string
from app.main import create_app
from tests.conftest import BASE, make_settings
from tests.fhir.fixtures import FHIR_JSON, patient


def assert_outcome(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body  # type: ignore[no-any-return]


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.post("/Patient", content=b'{"resourceType": "Pat', headers=FHIR_JSON), 400)
    assert_outcome(await client.post("/Patient", content=b"", headers=FHIR_JSON), 400)
    assert_outcome(await client.post("/Patient", content=b"[1, 2]", headers=FHIR_JSON), 400)


async def test_invalid_resource_says_where_and_why(client: httpx.AsyncClient) -> None:
    body = patient()
    body["birthDate"] = "13.09.1972"
    body["name"] = [{"given": [42]}]
    outcome = assert_outcome(
        await client.post("/Patient", content=orjson.dumps(body), headers=FHIR_JSON), 400
    )
    expressions = {tuple(issue.get("expression", [])) for issue in outcome["issue"]}  # type: ignore[attr-defined]
    assert ("Patient.birthDate",) in expressions
    assert ("Patient.name[0].given[0]",) in expressions


async def test_unknown_element_is_rejected(client: httpx.AsyncClient) -> None:
    body = {**patient(), "favouriteColour": "blue"}
    outcome = assert_outcome(
        await client.post("/Patient", content=orjson.dumps(body), headers=FHIR_JSON), 400
    )
    assert outcome["issue"][0]["expression"] == ["Patient.favouriteColour"]  # type: ignore[index]


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    body = orjson.dumps(patient())
    assert_outcome(await client.post("/Patient", content=body, headers={"Content-Type": "text/plain"}), 415)
    xml = {"Content-Type": "application/fhir+xml"}
    assert_outcome(await client.post("/Patient", content=b"<Patient/>", headers=xml), 415)


async def test_unknown_route_is_404_and_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.get("/Patient/1/_history/1/extra"), 404)
    assert_outcome(await client.post("/Patient/1"), 405)
    assert_outcome(await client.put("/Patient/1/_history"), 405)
    assert_outcome(await client.post("/metadata"), 405)
    assert_outcome(await client.get("/patient/1"), 404)  # types are case-sensitive
    assert_outcome(await client.get("/Patient/bad_id"), 400)  # ids have no underscore
    assert_outcome(await client.delete("/Patient/" + "x" * 65), 400)


async def test_a_trailing_newline_never_names_another_resource(client: httpx.AsyncClient) -> None:
    # Route patterns end in `$`, which in Python also matches before a final newline: these read and
    # deleted Patient/kari.
    body = orjson.dumps({**patient(), "id": "kari"})
    assert (await client.put("/Patient/kari", content=body, headers=FHIR_JSON)).status_code == 201
    for method, path in (
        ("GET", "/Patient/kari%0A"),
        ("DELETE", "/Patient/kari%0A"),
        ("PUT", "/Patient/kari%0A"),
        ("GET", "/Patient/kari/_history/1%0A"),
        ("GET", "/Patient%0A/kari"),
        ("GET", "/metadata%0A"),
    ):
        outcome = assert_outcome(await client.request(method, path, content=body, headers=FHIR_JSON), 400)
        assert "control character" in outcome["issue"][0]["diagnostics"]  # type: ignore[index]
    assert (await client.get("/Patient/kari")).json()["meta"]["versionId"] == "1"
    # In a bundle the id is checked whole too.
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "DELETE", "url": "Patient/kari\n"}}],
    }
    reply = await client.post("/", content=orjson.dumps(batch), headers=FHIR_JSON)
    assert reply.json()["entry"][0]["response"]["status"].startswith("400")
    assert (await client.get("/Patient/kari")).status_code == 200


async def test_405_and_options_name_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    wrong = await client.patch(
        "/Patient", content=b"[]", headers={"Content-Type": "application/json-patch+json"}
    )
    assert_outcome(wrong, 405)
    assert wrong.headers["allow"] == "GET, POST, PUT, DELETE, OPTIONS"
    wrong = await client.post("/Patient/1")
    assert_outcome(wrong, 405)
    assert wrong.headers["allow"] == "GET, PUT, PATCH, DELETE, OPTIONS"
    for path, allow in (
        ("/Patient", "GET, POST, PUT, DELETE, OPTIONS"),
        ("/Patient/1", "GET, PUT, PATCH, DELETE, OPTIONS"),
        ("/metadata", "GET, OPTIONS"),
    ):
        options = await client.options(path)
        assert options.status_code == 200, options.text
        assert options.headers["allow"] == allow
    assert_outcome(await client.options("/NoSuchType"), 404)


async def test_an_unknown_type_is_404_whatever_the_method(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("POST", "/0/_search"),
        ("POST", "/0/$reindex"),
        ("POST", "/0"),
        ("GET", "/0"),
        ("PUT", "/Nonsense/1"),
        ("POST", "/Nonsense/1/$everything"),
    ):
        outcome = assert_outcome(await client.request(method, path), 404)
        assert "resource type" in outcome["issue"][0]["diagnostics"]  # type: ignore[index]
    # A trailing slash still leads to the path without it.
    assert (await client.get("/Patient/")).status_code == 307


async def test_nothing_is_stored_on_a_rejected_write(client: httpx.AsyncClient) -> None:
    bad = {**patient(), "id": "p1", "birthDate": "yesterday"}
    assert_outcome(await client.put("/Patient/p1", content=orjson.dumps(bad), headers=FHIR_JSON), 400)
    assert (await client.get("/Patient/p1")).status_code == 404
    assert (await client.get("/_history")).json()["total"] == 0


async def small_limit_client(url: str, limit: int) -> tuple[FastAPI, httpx.AsyncClient]:
    app = create_app(make_settings(url, max_body_bytes=limit))
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def test_body_over_the_limit_is_413(app: FastAPI) -> None:
    small_app, client = await small_limit_client(app.state.settings.database_url, 200)
    try:
        big = orjson.dumps(patient(given="x" * 500))
        assert_outcome(await client.post("/Patient", content=big, headers=FHIR_JSON), 413)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 50  # no Content-Length: the limit is enforced while streaming

        assert_outcome(await client.post("/Patient", content=chunks(), headers=FHIR_JSON), 413)
        assert (await client.get("/_history")).json()["total"] == 0
    finally:
        await client.aclose()
        await small_app.state.database.dispose()


async def test_default_limit_is_ten_megabytes(client: httpx.AsyncClient) -> None:
    huge = (
        b'{"resourceType":"Patient","text":{"status":"generated","div":"' + b"x" * (10 * 1024 * 1024) + b'"}}'
    )
    assert_outcome(await client.post("/Patient", content=huge, headers=FHIR_JSON), 413)


async def test_server_fault_is_500_without_stack_trace_or_patient_data(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "13097248022-Kari-Nordmann"

    async def broken_hook(event: WriteEvent) -> None:
        raise RuntimeError(f"hook failed for {secret}")

    hooks = app.state.fhir.hooks
    hooks.before_write.add(Stage.VALIDATE, broken_hook)
    try:
        with caplog.at_level(logging.INFO):
            response = await client.post("/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    finally:
        hooks.before_write.remove(broken_hook)
    outcome = assert_outcome(response, 500)
    text = response.text
    assert secret not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text
    assert outcome["issue"][0]["code"] == "exception"  # type: ignore[index]
    assert secret not in caplog.text
    assert "RuntimeError" in caplog.text  # the incident itself is logged, without the message
    assert (await client.get("/_history")).json()["total"] == 0  # rolled back


async def test_fastapi_validation_errors_become_operation_outcomes(app: FastAPI) -> None:
    probe = FastAPI()
    from app.errors import install_error_handlers

    install_error_handlers(probe, 1000)

    @probe.get("/typed/{number}")
    async def typed(number: int) -> dict[str, int]:
        return {"n": number}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=probe), base_url=BASE) as client:
        response = await client.get("/typed/abc")
    assert_outcome(response, 400)


# FHIR's string type (R4 StructureDefinition string.value): no control characters, and no whitespace
# other than space, tab, CR and LF.
FHIR_STRING = re.compile(r"[ \r\n\t\S]+")


async def test_outcomes_quoting_the_request_stay_valid_fhir(client: httpx.AsyncClient) -> None:
    # schemathesis found the client's own characters echoed into diagnostics and expression, which made
    # the OperationOutcome invalid (its JSON schema refused it).
    odd = "a\x0bb\u2028c\x85d\x14e\u00a0f"
    refused = assert_outcome(await client.get("/Patient", params={"_format": odd}), 406)
    body = {**patient(), f"x{odd}": [None]}
    invalid = assert_outcome(
        await client.post("/Patient", content=orjson.dumps(body), headers=FHIR_JSON), 400
    )
    for outcome in (refused, invalid):
        for issue in outcome["issue"]:  # type: ignore[attr-defined]
            for text in (issue["diagnostics"], *issue.get("expression", [])):
                assert FHIR_STRING.fullmatch(text), text
    assert "a\\u000bb\\u2028c\\u0085d\\u0014e\\u00a0f" in refused["issue"][0]["diagnostics"]  # type: ignore[index]


def test_fhir_string_escapes_only_what_fhir_forbids() -> None:
    assert fhir_string("Åse Ødegård: «tekst» 😀\tok\r\n") == "Åse Ødegård: «tekst» 😀\tok\r\n"
    assert fhir_string("a\x00b\x1fc\x7fd") == "a\\u0000b\\u001fc\\u007fd"
    assert fhir_string("") == "-"  # a FHIR string is never empty
