"""Rest-hook delivery to a real local receiver: what matches is delivered, exactly once and in order;
what does not match, or was rolled back, never is (both databases)."""

from __future__ import annotations

import orjson

from tests.fhir.subscriptions.conftest import (
    FHIR_JSON,
    AppFactory,
    Receiver,
    all_delivered,
    create,
    eventually,
    outbox,
    patient,
    put,
    subscription,
)


async def test_matching_writes_are_delivered_with_payload_and_headers(
    make_app: AppFactory, receiver: Receiver
) -> None:
    async with make_app() as (app, client):
        await create(
            client, subscription(receiver.url, header=["Authorization: Bearer s3cret", "X-Kilde: test"])
        )
        hansen = await create(client, patient("Hansen"))
        olsen = await create(client, patient("Olsen"))  # does not match
        await create(client, {"resourceType": "Organization", "name": "Hansen AS"})  # another type
        hansen = await put(client, {**hansen, "gender": "female"})  # matches again: version 2
        await put(client, {**olsen, "name": [{"family": "Hansen", "given": ["Ola"]}]})  # now it matches
        assert (await client.delete(f"/Patient/{hansen['id']}")).status_code == 200  # R4: no notification

        received = await receiver.wait_for(3)
        # The database is the ground truth that nothing else is on its way: three rows, all delivered.
        await eventually(lambda: all_delivered(app, 3))
        assert len(receiver.requests) == 3
        assert [(r.method, r.path) for r in received] == [
            ("PUT", f"/hook/Patient/{hansen['id']}"),
            ("PUT", f"/hook/Patient/{hansen['id']}"),
            ("PUT", f"/hook/Patient/{olsen['id']}"),
        ]
        assert [r.json()["meta"]["versionId"] for r in received] == ["1", "2", "2"]
        assert received[1].json()["gender"] == "female"
        assert received[2].json()["name"][0]["given"] == ["Ola"]
        for request in received:
            assert request.headers["content-type"] == "application/fhir+json"
            assert request.headers["authorization"] == "Bearer s3cret"
            assert request.headers["x-kilde"] == "test"


async def test_without_payload_an_empty_post_goes_to_the_endpoint(
    make_app: AppFactory, receiver: Receiver
) -> None:
    async with make_app() as (_app, client):
        await create(client, subscription(receiver.url, criteria="Observation?code=8867-4", payload=None))
        await create(client, _observation("8867-4"))
        await create(client, _observation("9279-1"))  # another code
        await create(client, _observation("8867-4"))
        received = await receiver.wait_for(2)
        assert [(r.method, r.path, r.body) for r in received] == [("POST", "/hook", b"")] * 2


async def test_rolled_back_transaction_notifies_nobody(make_app: AppFactory, receiver: Receiver) -> None:
    async with make_app() as (app, client):
        await create(client, subscription(receiver.url))
        failing = _transaction(
            {"request": {"method": "POST", "url": "Patient"}, "resource": patient("Hansen", "Rullet")},
            {
                "request": {"method": "PUT", "url": "Patient/missing", "ifMatch": 'W/"3"'},
                "resource": {**patient("Hansen"), "id": "missing"},
            },
        )
        response = await client.post("/", content=orjson.dumps(failing), headers=FHIR_JSON)
        assert response.status_code == 412, response.text
        assert await outbox(app) == []

        committed = _transaction(
            {"request": {"method": "POST", "url": "Patient"}, "resource": patient("Hansen", "Lagret")},
            {"request": {"method": "POST", "url": "Patient"}, "resource": patient("Olsen")},
        )
        response = await client.post("/", content=orjson.dumps(committed), headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        received = await receiver.wait_for(1)
        await eventually(lambda: all_delivered(app, 1))
        assert [r.json()["name"][0]["given"] for r in receiver.requests] == [["Lagret"]]
        assert received[0].json()["name"][0]["family"] == "Hansen"


async def test_subscriptions_that_are_off_or_deleted_get_nothing(
    make_app: AppFactory, receiver: Receiver
) -> None:
    # A cache that never expires on its own: every change below must reach matching at once.
    async with make_app(subscription_cache_seconds=3600) as (app, client):
        off = await create(client, subscription(receiver.url))
        await put(client, {**off, "status": "off"})
        deleted = await create(client, subscription(receiver.url, criteria="Patient"))
        assert (await client.delete(f"/Subscription/{deleted['id']}")).status_code == 200
        await create(client, patient("Hansen"))
        assert await outbox(app) == []
        # Back on: later writes are delivered again.
        await put(client, {**off, "status": "requested"})
        await create(client, patient("Hansen", "Igjen"))
        received = await receiver.wait_for(1)
        assert received[0].json()["name"][0]["given"] == ["Igjen"]


def _observation(code: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
    }


def _transaction(*entries: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}
