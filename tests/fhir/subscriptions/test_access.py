"""With authentication on, a notification carries only what the subscriber may read: each notified version
is read as the client that registered the subscription (scopes, consent blocks), that read is audited, and
a version it may not read is not notified at all (both databases, real HTTP receivers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.fhir.subscriptions.conftest import (
    FHIR_JSON,
    AppFactory,
    Receiver,
    eventually,
    outbox,
    subscription,
)
from tests.security.helpers import auth_header
from tests.security.scenario import HOSPITAL_ORGNR, OTHER_CLINIC_ORGNR, scenario, transaction

Secured = Callable[..., Any]


@pytest.fixture
def secured(make_app: AppFactory, dev_key_file: Path) -> Secured:
    """secured(**settings): make_app with authentication on (the dev issuer) and the scenario seeded."""

    @asynccontextmanager
    async def running(**overrides: object) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        settings = {"auth_mode": "jwt", "auth_dev_issuer": True, "auth_dev_key_file": str(dev_key_file)}
        async with make_app(**settings, **overrides) as (app, client):
            yield app, client

    return running


def system_client(mint: Callable[..., str], name: str, scopes: str, orgnr: str) -> dict[str, str]:
    return auth_header(mint(subject=name, client_id=name, scopes=scopes, orgnr=orgnr))


async def seed(client: httpx.AsyncClient, seeder: dict[str, str]) -> None:
    response = await client.post("/", json=transaction(scenario()), headers=seeder)
    assert response.status_code == 200, response.text


async def subscribe(client: httpx.AsyncClient, who: dict[str, str], body: dict[str, Any]) -> str:
    response = await client.post("/Subscription", json=body, headers={**who, **FHIR_JSON})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def change(client: httpx.AsyncClient, seeder: dict[str, str], reference: str, **fields: Any) -> None:
    current = await client.get(f"/{reference}", headers=seeder)
    assert current.status_code == 200, current.text
    response = await client.put(f"/{reference}", json={**current.json(), **fields}, headers=seeder)
    assert response.status_code == 200, response.text


async def states(app: FastAPI, expected: list[tuple[str, str]]) -> bool:
    """(res_id, state) of every outbox row, in write order, is `expected`."""
    return [(res_id, state) for res_id, _, state, _ in await outbox(app)] == expected


async def delivery_audit(client: httpx.AsyncClient, seeder: dict[str, str], client_id: str) -> list[Any]:
    """(subtype, outcome, entity references) of the AuditEvents of deliveries read as `client_id`."""
    response = await client.get("/AuditEvent?_count=500", headers=seeder)
    assert response.status_code == 200, response.text
    found = []
    for entry in response.json().get("entry", []):
        event = entry["resource"]
        who = {a.get("who", {}).get("identifier", {}).get("value") for a in event.get("agent", [])}
        request_ids = {
            e["what"]["identifier"]["value"]
            for e in event.get("entity", [])
            if "identifier" in e.get("what", {})
        }
        if client_id in who and any(r.startswith("subscription-delivery-") for r in request_ids):
            references = sorted(
                e["what"]["reference"] for e in event["entity"] if "reference" in e.get("what", {})
            )
            found.append((event["subtype"][0]["code"], event["outcome"], references))
    return found


async def test_subscriber_gets_only_what_its_scopes_allow_and_each_delivery_is_audited(
    secured: Secured, mint: Callable[..., str], receiver: Receiver, other_receiver: Receiver
) -> None:
    seeder = system_client(mint, "seeder", "system/*.cruds", OTHER_CLINIC_ORGNR)
    # Only allowed to manage subscriptions: it must not learn Observations through them.
    blind = system_client(mint, "blind", "system/Subscription.cruds", OTHER_CLINIC_ORGNR)
    reader = system_client(
        mint, "reader", "system/Subscription.cruds system/Observation.rs", OTHER_CLINIC_ORGNR
    )
    async with secured() as (app, client):
        await seed(client, seeder)
        criteria = "Observation?subject=Patient/nils"
        await subscribe(client, blind, subscription(receiver.url, criteria=criteria))
        await subscribe(client, blind, subscription(receiver.url, criteria=criteria, payload=None))
        await subscribe(client, reader, subscription(other_receiver.url, criteria=criteria))

        await change(client, seeder, "Observation/nils-bp", valueString="140/90")

        # Positive control: the client with a read scope gets the full resource.
        [received] = await other_receiver.wait_for(1)
        assert (received.method, received.path) == ("PUT", "/hook/Observation/nils-bp")
        assert received.json()["valueString"] == "140/90"
        # The other client gets nothing for it: no content, and not even an empty ping.
        expected = [("nils-bp", "withheld"), ("nils-bp", "withheld"), ("nils-bp", "delivered")]
        await eventually(lambda: _sorted_states(app, expected))
        assert receiver.requests == []

        # Every delivery is audited as the subscriber's read: the refused ones too.
        assert await delivery_audit(client, seeder, "reader") == [
            ("vread", "0", ["Observation/nils-bp/_history/2", "Patient/nils"])
        ]
        assert [(s, o) for s, o, _ in await delivery_audit(client, seeder, "blind")] == [("vread", "4")] * 2


async def test_blocked_resource_is_not_delivered_to_the_blocked_organisation(
    secured: Secured, mint: Callable[..., str], receiver: Receiver
) -> None:
    seeder = system_client(mint, "seeder", "system/*.cruds", OTHER_CLINIC_ORGNR)
    # Kari has blocked her psychiatric note from the hospital (sperring); the hospital's integration may
    # read documents otherwise.
    hospital = system_client(
        mint, "hospital-integration", "system/Subscription.cruds system/DocumentReference.rs", HOSPITAL_ORGNR
    )
    async with secured() as (app, client):
        await seed(client, seeder)
        await subscribe(
            client, hospital, subscription(receiver.url, criteria="DocumentReference?subject=Patient/kari")
        )

        await change(client, seeder, "DocumentReference/kari-psych-note", description="Samtale 2")
        await change(client, seeder, "DocumentReference/kari-discharge", description="Epikrise 2")

        [received] = await receiver.wait_for(1)
        assert received.path == "/hook/DocumentReference/kari-discharge"
        assert received.json()["description"] == "Epikrise 2"
        await eventually(
            lambda: states(app, [("kari-psych-note", "withheld"), ("kari-discharge", "delivered")])
        )
        assert len(receiver.requests) == 1
        audit = await delivery_audit(client, seeder, "hospital-integration")
        assert sorted(audit) == [
            ("vread", "0", ["DocumentReference/kari-discharge/_history/2", "Patient/kari"]),
            ("vread", "4", ["Patient/kari"]),  # refused: blocked by consent
        ]


async def test_the_last_writer_of_a_subscription_is_who_it_delivers_for(
    secured: Secured, mint: Callable[..., str], receiver: Receiver
) -> None:
    seeder = system_client(mint, "seeder", "system/*.cruds", OTHER_CLINIC_ORGNR)
    with_scope = system_client(
        mint, "lab-feed", "system/Subscription.cruds system/Observation.rs", OTHER_CLINIC_ORGNR
    )
    # The same client later holds a token without the Observation scope, and writes the subscription again.
    without_scope = system_client(mint, "lab-feed", "system/Subscription.cruds", OTHER_CLINIC_ORGNR)
    async with secured() as (app, client):
        await seed(client, seeder)
        body = subscription(receiver.url, criteria="Observation?subject=Patient/nils")
        sub_id = await subscribe(client, with_scope, body)
        await change(client, seeder, "Observation/nils-bp", valueString="120/80")
        await receiver.wait_for(1)

        response = await client.put(
            f"/Subscription/{sub_id}", json={**body, "id": sub_id, "reason": "Again"}, headers=without_scope
        )
        assert response.status_code == 200, response.text
        await change(client, seeder, "Observation/nils-bp", valueString="130/85")
        await eventually(lambda: states(app, [("nils-bp", "delivered"), ("nils-bp", "withheld")]))
        assert len(receiver.requests) == 1


async def test_a_subscription_without_a_recorded_principal_delivers_nothing_with_authentication_on(
    make_app: AppFactory, secured: Secured, mint: Callable[..., str], receiver: Receiver
) -> None:
    # Written while authentication was off (the demo), so nobody is on record to read as.
    async with make_app(subscription_worker=False) as (_app, open_client):
        body = subscription(receiver.url, criteria="Observation?subject=Patient/nils", payload=None)
        response = await open_client.post("/Subscription", json=body, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
    seeder = system_client(mint, "seeder", "system/*.cruds", OTHER_CLINIC_ORGNR)
    async with secured() as (app, client):
        await seed(client, seeder)
        await change(client, seeder, "Observation/nils-bp", valueString="150/95")
        # The seeded version and the change: neither is sent.
        await eventually(lambda: states(app, [("nils-bp", "withheld")] * 2))
        assert receiver.requests == []


async def _sorted_states(app: FastAPI, expected: list[tuple[str, str]]) -> bool:
    return sorted((res_id, state) for res_id, _, state, _ in await outbox(app)) == sorted(expected)
