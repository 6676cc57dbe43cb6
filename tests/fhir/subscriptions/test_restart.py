"""The outbox outlives the process: a new app instance on the same database delivers what an old one left,
and two instances delivering at once never send a notification twice or out of order (both databases)."""

from __future__ import annotations

import asyncio

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


async def test_new_instance_delivers_what_the_old_one_left(make_app: AppFactory, receiver: Receiver) -> None:
    receiver.status = 503
    async with make_app() as (old_app, client):
        await create(client, subscription(receiver.url))
        kari = await create(client, patient("Hansen", "Kari"))
        await put(client, {**kari, "gender": "female"})
        await receiver.wait_for(1)  # the old instance tried, and failed
    assert [state for _, _, state, _ in await outbox(old_app)] == ["pending", "pending"]

    receiver.status = 200
    async with make_app() as (new_app, _client):
        await eventually(lambda: all_delivered(new_app, 2))
    delivered = [r.json()["meta"]["versionId"] for r in receiver.requests if r.answered == 200]
    assert delivered == ["1", "2"]


async def test_an_instance_without_worker_only_queues(make_app: AppFactory, receiver: Receiver) -> None:
    async with make_app(subscription_worker=False) as (api_only, client):
        await create(client, subscription(receiver.url))
        await create(client, patient("Hansen"))
        assert [state for _, _, state, _ in await outbox(api_only)] == ["pending"]
        assert receiver.requests == []
    async with make_app() as (worker_app, _client):
        await receiver.wait_for(1)
        await eventually(lambda: all_delivered(worker_app, 1))


async def test_two_delivering_instances_share_the_outbox(make_app: AppFactory, receiver: Receiver) -> None:
    async with make_app(subscription_worker=False) as (_writer_app, client):
        for name in ("Hansen", "Olsen"):
            await create(client, subscription(receiver.url, criteria=f"Patient?family={name}"))
        written = []
        for n in range(12):
            family = "Hansen" if n % 2 else "Olsen"
            written.append((await create(client, patient(family, f"Nr{n}")))["id"])
    async with make_app() as (first, _a), make_app() as (_second, _b):
        await eventually(lambda: all_delivered(first, 12))
    # Both workers have stopped, so every request they made has arrived.
    received = receiver.requests
    paths = [r.path.rsplit("/", 1)[1] for r in received]
    assert sorted(paths) == sorted(written)  # each exactly once
    for family in ("Hansen", "Olsen"):  # and per subscription in write order
        order = [r.json()["name"][0]["given"][0] for r in received if r.json()["name"][0]["family"] == family]
        assert order == sorted(order, key=lambda given: int(given[2:]))
    assert len(receiver.requests) == 12


async def test_another_instance_matches_a_new_subscription_after_its_cache_time(
    make_app: AppFactory, receiver: Receiver
) -> None:
    async with (
        make_app(subscription_worker=False) as (app, client),
        make_app(subscription_worker=False, subscription_cache_seconds=0.1) as (_other, other_client),
    ):
        await create(other_client, patient("Olsen"))  # the other instance has loaded its (empty) cache
        await create(client, subscription(receiver.url))
        await asyncio.sleep(0.15)  # past the other instance's cache time
        await create(other_client, patient("Hansen"))
        assert [state for _, _, state, _ in await outbox(app)] == ["pending"]
