"""The RabbitMQ the AMQP transport tests run against, and queues of their own per test.

RabbitMQ is optional on a developer machine (the tests skip, saying how to provide it) and mandatory in CI
(HELSEBRO_CI=1, tests/external.py), where .ci/run starts it when it is down.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiormq.exceptions import AMQPError

from tests.external import missing

AMQP_URL = os.environ.get("HELSEBRO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
async def broker() -> str:
    try:
        connection = await asyncio.wait_for(aio_pika.connect(AMQP_URL), 10)
        await connection.close()
    except (OSError, AMQPError, TimeoutError) as exc:
        missing(
            f"RabbitMQ not reachable at {AMQP_URL} ({type(exc).__name__}): start rabbitmq-server "
            "or set HELSEBRO_TEST_AMQP_URL"
        )
    return AMQP_URL


@dataclass(frozen=True)
class Queues:
    incoming: str
    reply: str
    outgoing: str
    connection_name: str  # the transport's, to find its connection on the broker


@pytest.fixture
async def peer(broker: str) -> AsyncIterator[AbstractRobustConnection]:
    """The other side: the message service that sends to our queue and reads the answers."""
    connection = await aio_pika.connect_robust(broker)
    yield connection
    await connection.close()


@pytest.fixture
async def queues(peer: AbstractRobustConnection) -> AsyncIterator[Queues]:
    """Queue names of this test alone (declared durable, the incoming one with a single active consumer, as
    the transport does), deleted after it."""
    tag = uuid.uuid4().hex[:10]
    names = Queues(f"test.{tag}.in", f"test.{tag}.reply", f"test.{tag}.out", f"helsebro-test-{tag}")
    channel = await peer.channel()
    await channel.declare_queue(names.incoming, durable=True, arguments={"x-single-active-consumer": True})
    for name in (names.reply, names.outgoing):
        await channel.declare_queue(name, durable=True)
    yield names
    for name in (names.incoming, names.reply, names.outgoing):
        await channel.queue_delete(name)
    await channel.close()


def close_broker_connection(connection_name: str) -> None:
    """Have the broker close the named client connection, as a broker restart or a network cut would."""
    if shutil.which("rabbitmqctl") is None:
        missing("rabbitmqctl not found (rabbitmq-server's management command)")
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    pids = [line.split("\t")[0] for line in listed.splitlines() if f'"{connection_name}"' in line]
    assert pids, f"no broker connection named {connection_name}"
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test"], timeout=60, check=True)
