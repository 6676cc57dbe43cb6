"""One subscriber's endpoint never holds up another's notifications: not one that hangs, not one that
answers a byte at a time, not a broken endpoint left in the database (both databases, real sockets)."""

from __future__ import annotations

import socket
import threading
import time

from fastapi import FastAPI
from sqlalchemy import text

from tests.fhir.subscriptions.conftest import (
    AppFactory,
    Receiver,
    create,
    eventually,
    outbox,
    patient,
    subscription,
)

PROMPTLY = 4.0  # well below the delivery timeout the tests set


class Trickler:
    """Answers every request with a status line, then one header byte every 0.1 s, forever: each read
    gets data well within any per-read timeout."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self._stopped.wait(0.1):
                    conn.sendall(b"a")
            except OSError:
                pass  # the client gave up

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()


async def test_a_hanging_subscriber_does_not_hold_up_another(
    make_app: AppFactory, receiver: Receiver, other_receiver: Receiver
) -> None:
    receiver.hang = True  # takes each request and never answers
    async with make_app(subscription_timeout_seconds=10.0) as (_app, client):
        await create(client, subscription(receiver.url))
        await create(client, subscription(other_receiver.url))
        started = time.monotonic()
        for n in range(3):
            await create(client, patient("Hansen", f"Nr{n}"))
        received = await other_receiver.wait_for(3, within=PROMPTLY)
        assert time.monotonic() - started < PROMPTLY
        assert [r.json()["name"][0]["given"] for r in received] == [["Nr0"], ["Nr1"], ["Nr2"]]
        assert len(receiver.requests) == 1  # its own notifications wait, in order, behind the first
        receiver.stop()  # answers the hanging request: the app stops without waiting for the timeout


async def test_an_endpoint_answering_a_byte_at_a_time_is_cut_off_at_the_timeout(
    make_app: AppFactory, receiver: Receiver
) -> None:
    trickler = Trickler()
    try:
        async with make_app(subscription_timeout_seconds=0.5) as (app, client):
            await create(client, subscription(trickler.url))
            await create(client, subscription(receiver.url))
            await create(client, patient("Hansen"))
            await receiver.wait_for(1, within=PROMPTLY)

            async def retried() -> bool:
                rows = await outbox(app)
                return any(state == "pending" and attempts >= 2 for _, _, state, attempts in rows)

            await eventually(retried, within=PROMPTLY)  # the first attempt ended, and another began

            async def reconnected() -> bool:
                return trickler.connections >= 2

            await eventually(reconnected, within=PROMPTLY)
    finally:
        trickler.stop()


async def test_a_broken_endpoint_in_the_database_fails_alone(
    make_app: AppFactory, receiver: Receiver, other_receiver: Receiver
) -> None:
    async with make_app() as (app, client):
        broken = await create(client, subscription(receiver.url))
        await create(client, subscription(other_receiver.url))
        # As if stored before endpoints were checked on write.
        await _set_endpoint(app, broken["id"], receiver.url + "\r\nX-Injected: 1")
        for n in range(3):
            await create(client, patient("Hansen", f"Nr{n}"))
        await other_receiver.wait_for(3, within=PROMPTLY)

        async def in_error() -> bool:
            return str((await client.get(f"/Subscription/{broken['id']}")).json()["status"]) == "error"

        await eventually(in_error)
        assert receiver.requests == []


async def _set_endpoint(app: FastAPI, res_id: str, endpoint: str) -> None:
    async with app.state.database.engine.begin() as conn:
        statement = text("UPDATE subscription SET endpoint = :endpoint WHERE res_id = :res_id")
        await conn.execute(statement, {"endpoint": endpoint, "res_id": res_id})
