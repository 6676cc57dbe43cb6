"""A receiver that is down or failing: notifications wait and arrive later in write order; after the last
attempt the notification fails and the subscription goes to status "error" (both databases)."""

from __future__ import annotations

from fastapi import FastAPI

from tests.fhir.subscriptions.conftest import (
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


async def test_receiver_down_then_up_gets_everything_in_order(
    make_app: AppFactory, receiver: Receiver
) -> None:
    receiver.stop()  # the port is closed: connections are refused
    async with make_app() as (app, client):
        await create(client, subscription(receiver.url))
        first = await create(client, patient("Hansen", "En"))
        second = await create(client, patient("Hansen", "To"))
        first = await put(client, {**first, "gender": "female"})

        async def retried() -> bool:
            rows = await outbox(app)
            return len(rows) == 3 and rows[0][3] >= 2

        await eventually(retried)  # the first notification has failed at least twice
        rows = await outbox(app)
        assert [state for _, _, state, _ in rows] == ["pending"] * 3
        assert [attempts for _, _, _, attempts in rows[1:]] == [0, 0]  # nothing overtakes the first

        receiver.start()
        received = await receiver.wait_for(3)
        await eventually(lambda: all_delivered(app, 3))
        assert [(r.path, r.json()["meta"]["versionId"]) for r in received] == [
            (f"/hook/Patient/{first['id']}", "1"),
            (f"/hook/Patient/{second['id']}", "1"),
            (f"/hook/Patient/{first['id']}", "2"),
        ]


async def test_max_attempts_sets_error_and_a_reactivated_subscription_resumes(
    make_app: AppFactory, receiver: Receiver
) -> None:
    receiver.status = 500
    async with make_app(subscription_max_attempts=3) as (app, client):
        sub = await create(client, subscription(receiver.url))
        await create(client, patient("Hansen", "Feilet"))
        await create(client, patient("Hansen", "Venter"))

        async def in_error() -> bool:
            status: str = (await client.get(f"/Subscription/{sub['id']}")).json()["status"]
            return status == "error"

        await eventually(in_error)
        errored = (await client.get(f"/Subscription/{sub['id']}")).json()
        assert "3 attempts" in errored["error"]
        assert "HTTP 500" in errored["error"]
        assert len(receiver.requests) == 3  # exactly max_attempts, all for the first notification
        assert {r.json()["name"][0]["given"][0] for r in receiver.requests} == {"Feilet"}
        rows = await outbox(app)
        assert [(state, attempts) for _, _, state, attempts in rows] == [("failed", 3), ("pending", 0)]

        # A subscription in error is not active: later writes are not queued for it.
        await create(client, patient("Hansen", "Ignorert"))
        assert len(await outbox(app)) == 2

        # The receiver is fixed and the client asks for the subscription again: what waited is delivered.
        receiver.status = 200
        await put(client, {**errored, "status": "requested"})
        received = await receiver.wait_for(4)
        assert received[3].json()["name"][0]["given"] == ["Venter"]
        await eventually(lambda: _states(app, ["failed", "delivered"]))


async def _states(app: FastAPI, expected: list[str]) -> bool:
    return [state for _, _, state, _ in await outbox(app)] == expected
