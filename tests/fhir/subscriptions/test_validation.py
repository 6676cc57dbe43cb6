"""Writing Subscription resources: what is accepted, what is refused with 422 (both databases)."""

from __future__ import annotations

from typing import Any

from app.fhir.subscriptions.config import SubscriptionConfig
from tests.fhir.subscriptions.conftest import FHIR_JSON, AppFactory, create, put, subscription

ENDPOINT = "https://receiver.example/hook"


async def test_requested_becomes_active_and_criteria_may_name_a_type_only(make_app: AppFactory) -> None:
    async with make_app(subscription_worker=False) as (_app, client):
        created = await create(client, subscription(ENDPOINT))
        assert created["status"] == "active"
        assert (await client.get(f"/Subscription/{created['id']}")).json()["status"] == "active"
        every_patient = await create(client, subscription(ENDPOINT, criteria="Patient", payload=None))
        assert every_patient["status"] == "active"
        # The client may turn it off, and back on by asking again.
        off = await put(client, {**created, "status": "off"})
        assert off["status"] == "off"
        again = await put(client, {**off, "status": "requested"})
        assert again["status"] == "active"


UNDELIVERABLE: list[tuple[dict[str, Any], str]] = [
    ({"channel": {"type": "websocket", "endpoint": ENDPOINT}}, "Subscription.channel.type"),
    ({"channel": {"type": "email", "endpoint": "mailto:a@example.org"}}, "Subscription.channel.type"),
    (
        {"channel": {"type": "rest-hook", "endpoint": "ftp://receiver.example/x"}},
        "Subscription.channel.endpoint",
    ),
    ({"channel": {"type": "rest-hook", "endpoint": "/relative"}}, "Subscription.channel.endpoint"),
    ({"channel": {"type": "rest-hook"}}, "Subscription.channel.endpoint"),
    (
        {"channel": {"type": "rest-hook", "endpoint": ENDPOINT, "payload": "application/fhir+xml"}},
        "Subscription.channel.payload",
    ),
    (
        {"channel": {"type": "rest-hook", "endpoint": ENDPOINT, "header": ["no colon"]}},
        "Subscription.channel.header",
    ),
    (
        {"channel": {"type": "rest-hook", "endpoint": ENDPOINT, "header": ["Host: evil.example"]}},
        "Subscription.channel.header",
    ),
    ({"criteria": "Nonsense?name=x"}, "Subscription.criteria"),
    ({"criteria": "Patient?no-such-param=x"}, "Subscription.criteria"),
    ({"criteria": "Patient?_count=10"}, "Subscription.criteria"),
    ({"criteria": "Patient?birthdate=not-a-date"}, "Subscription.criteria"),
]


async def test_undeliverable_subscription_is_422(make_app: AppFactory) -> None:
    async with make_app(subscription_worker=False) as (_app, client):
        stored = await create(client, subscription(ENDPOINT))
        for change, field in UNDELIVERABLE:
            body = {**subscription(ENDPOINT), **change}
            response = await client.post("/Subscription", json=body, headers=FHIR_JSON)
            assert response.status_code == 422, (change, response.text)
            outcome = response.json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert outcome["issue"][0]["expression"] == [field], change
            # An update to an undeliverable form is refused the same way, and the stored one stays.
            response = await client.put(f"/Subscription/{stored['id']}", json={**body, "id": stored["id"]})
            assert response.status_code == 422, change
        assert (await client.get(f"/Subscription/{stored['id']}")).json()["meta"]["versionId"] == "1"
        assert (await client.get("/Subscription")).json()["total"] == 1


async def test_structurally_invalid_subscription_is_400(make_app: AppFactory) -> None:
    async with make_app(subscription_worker=False) as (_app, client):
        body = subscription(ENDPOINT)
        body["channel"]["type"] = "carrier-pigeon"  # outside the required value set: the model check says no
        response = await client.post("/Subscription", json=body, headers=FHIR_JSON)
        assert response.status_code == 400


def test_retry_delay_doubles_up_to_the_maximum() -> None:
    config = SubscriptionConfig(retry_base_seconds=5, retry_max_seconds=60)
    assert [config.retry_delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert config.lease_seconds > 2 * config.timeout_seconds
