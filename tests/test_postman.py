"""The committed Postman collection is what app/postman.py makes, and every request in it asserts.

Running it is `.ci/live`'s job (newman against a server `make run` started); here: drift and shape."""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.postman import COLLECTION_PATH, TOKENS, render


def requests(collection: dict[str, Any]) -> list[dict[str, Any]]:
    return [request for journey in collection["item"] for request in journey["item"]]


def test_the_collection_has_not_drifted() -> None:
    assert COLLECTION_PATH.exists(), (
        "openapi/helsebro.postman_collection.json is missing: run `make postman-collection`"
    )
    assert COLLECTION_PATH.read_bytes() == render(), (
        "the Postman collection is stale: run `make postman-collection` and commit it"
    )


def test_every_request_checks_its_status_and_uses_a_declared_variable() -> None:
    collection = orjson.loads(render())
    declared = {variable["key"] for variable in collection["variable"]}
    assert declared == {"baseUrl", *TOKENS}
    scripts = "\n".join(
        line for r in requests(collection) for e in r["event"] for line in e["script"]["exec"]
    )
    set_by_scripts = set(re.findall(r'collectionVariables\.set\("(\w+)"', scripts))
    assert {"fnr", "patientId", "taskId", "msgId", "allergyId", "episodeId", "carePlanId"} <= set_by_scripts
    for request in requests(collection):
        (tests,) = [e["script"]["exec"] for e in request["event"] if e["listen"] == "test"]
        assert any("pm.response.to.have.status(" in line for line in tests), request["name"]
        assert len([line for line in tests if line.startswith("pm.test(")]) >= 2, request["name"]
        text = orjson.dumps(request["request"]).decode()
        assert request["request"]["url"].startswith("{{baseUrl}}/")
        for name in re.findall(r"\{\{(\w+)\}\}", text):
            assert name in declared | set_by_scripts, (request["name"], name)


def test_a_journey_per_domain() -> None:
    collection = orjson.loads(render())
    names = [journey["name"] for journey in collection["item"]]
    assert len(names) == 6
    urls = " ".join(r["request"]["method"] + " " + r["request"]["url"] for r in requests(collection))
    for step in (
        "POST {{baseUrl}}/Patient",
        "/_history",
        "POST {{baseUrl}}/",
        "$everything",
        "$receive",
        "$assess",
        "/Patient/kari/$referrals",
        "/AuditEvent?patient=",
        "$kith-message",
        "$kith-henvisning",
        "$medication-list",
        "$reconcile",
        "POST {{baseUrl}}/AllergyIntolerance",
        "POST {{baseUrl}}/Immunization",
        "/Patient/kari/$summary",
        "/Patient/oyvind/$summary",
        "/CarePlan?episode-of-care=",
        "/CarePlan/{{carePlanId}}/$next",
        "/Patient/kari/$pregnancy-card?episode={{episodeId}}",
        "_format=html",
    ):
        assert step in urls, step
    tokens = {
        h["value"]
        for r in requests(collection)
        for h in r["request"]["header"]
        if h["key"] == "Authorization"
    }
    assert tokens == {f"Bearer {{{{{name}}}}}" for name in TOKENS}
