"""Where notifications may go: endpoints with control characters, credentials, or on loopback and
link-local addresses are refused on write (422) unless allow-listed, and again when connecting (names are
resolved then: DNS rebinding)."""

from __future__ import annotations

import httpx
import pytest

from app.fhir.subscriptions.endpoints import EndpointPolicy
from app.fhir.subscriptions.transport import RefusedAddress, delivery_client
from tests.fhir.subscriptions.conftest import (
    FHIR_JSON,
    AppFactory,
    Receiver,
    create,
    eventually,
    outbox,
    patient,
    subscription,
)

OPEN = EndpointPolicy()  # no allow-list

LOCAL = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "http://127.9.9.9/hook",
    "http://127.1/hook",  # what the resolver reads as 127.0.0.1
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0.0.0.0:80/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost/hook",
    "http://LocalHost./hook",
    "http://api.localhost/hook",
    "http://169.254.169.254/latest/meta-data",  # cloud metadata service
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
]
MALFORMED = [
    "https://hooks.example.no/x\r\nX-Injected: 1",
    "https://hooks.example.no/x\nHost: evil.example",
    "https://hooks.example.no/x\x00",
    "https://hooks.example.no/\tx",
    "https://hooks.example.no/a b",
    "https://user:secret@hooks.example.no/x",
    "https://127.0.0.1@hooks.example.no/x",
    "https://hooks.example.no:99999/x",
    "ftp://hooks.example.no/x",
    "/relative",
]


@pytest.mark.parametrize("endpoint", LOCAL)
def test_loopback_and_link_local_endpoints_are_refused_without_an_allow_list(endpoint: str) -> None:
    assert OPEN.refusal(endpoint) is not None


@pytest.mark.parametrize("endpoint", MALFORMED)
def test_malformed_endpoints_are_refused_whatever_the_allow_list(endpoint: str) -> None:
    assert OPEN.refusal(endpoint) is not None
    assert EndpointPolicy.from_entries(["hooks.example.no", "127.0.0.1"]).refusal(endpoint) is not None


def test_public_and_private_network_endpoints_are_accepted_without_an_allow_list() -> None:
    for endpoint in ("https://hooks.example.no/fhir", "http://10.1.2.3:8080/hook", "http://[2001:db8::1]/"):
        assert OPEN.refusal(endpoint) is None, endpoint


def test_an_allow_list_accepts_only_what_it_names() -> None:
    policy = EndpointPolicy.from_entries(
        ["https://hooks.example.no/fhir", " *.helsenett.example ", "127.0.0.1", "http://[::1]:8099"]
    )
    accepted = [
        "https://hooks.example.no/fhir",
        "https://hooks.example.no/fhir/",
        "https://HOOKS.example.no:443/fhir/r4",
        "http://a.b.helsenett.example:8080/x",
        "http://127.0.0.1:5000/hook",  # a host entry: any scheme and port
        "https://127.1/hook",
        "http://[::1]:8099/hook",
    ]
    refused = [
        "http://hooks.example.no/fhir",  # another scheme
        "https://hooks.example.no:8443/fhir",  # another port
        "https://hooks.example.no/fhirx",  # not below the path
        "https://hooks.example.no/",
        "https://hooks.example.no.evil.example/fhir",
        "https://helsenett.example/x",  # the wildcard is for hosts below it
        "https://evilhelsenett.example/x",
        "http://localhost/hook",
        "http://[::1]:8098/hook",
        "https://elsewhere.example/hook",
    ]
    for endpoint in accepted:
        assert policy.refusal(endpoint) is None, endpoint
    for endpoint in refused:
        assert policy.refusal(endpoint) is not None, endpoint


@pytest.mark.parametrize("entry", ["ftp://x.example/", "https://x.example/?a=1", "bad host", "a/b", "*"])
def test_an_unreadable_allow_list_entry_fails_at_start_up(entry: str) -> None:
    with pytest.raises(ValueError, match="allow-list entry"):
        EndpointPolicy.from_entries([entry])


async def test_bad_and_local_endpoints_are_refused_on_write(make_app: AppFactory, receiver: Receiver) -> None:
    async with make_app(subscription_worker=False, subscription_endpoint_allowlist="") as (_app, client):
        for endpoint in (
            receiver.url,
            "http://localhost:8080/",
            "https://hooks.example.no/x\r\nX-Injected: 1",
        ):
            response = await client.post("/Subscription", json=subscription(endpoint), headers=FHIR_JSON)
            assert response.status_code == 422, (endpoint, response.text)
            assert response.json()["issue"][0]["expression"] == ["Subscription.channel.endpoint"]
        # (Other control characters are not FHIR strings at all: 400 before these checks.)
        for header in ("X-A: b\r\nX-B: c", "X-A: b\r\n", "X-A: b\n\nbody", "X-A\r\n: b"):
            body = subscription("https://hooks.example.no/fhir", header=[header])
            response = await client.post("/Subscription", json=body, headers=FHIR_JSON)
            assert response.status_code == 422, (header, response.text)
            assert response.json()["issue"][0]["expression"] == ["Subscription.channel.header"]
        assert (await client.get("/Subscription")).json()["total"] == 0
        # A public endpoint is fine without an allow-list.
        await create(client, subscription("https://hooks.example.no/fhir", header=["X-A: b\tc"]))


async def test_an_endpoint_no_longer_allowed_gets_nothing_and_the_subscription_goes_to_error(
    make_app: AppFactory, receiver: Receiver
) -> None:
    async with make_app(subscription_worker=False) as (_app, client):  # 127.0.0.1 allow-listed
        sub = await create(client, subscription(receiver.url))
    async with make_app(subscription_endpoint_allowlist="") as (app, client):  # and now it is not
        await create(client, patient("Hansen"))

        async def in_error() -> bool:
            return str((await client.get(f"/Subscription/{sub['id']}")).json()["status"]) == "error"

        await eventually(in_error)
        assert [(state, attempts) for _, _, state, attempts in await outbox(app)] == [("failed", 1)]
        assert receiver.requests == []


async def test_delivery_connects_only_to_addresses_a_subscriber_may_name(receiver: Receiver) -> None:
    # A name that resolves to loopback is refused where the connection is made, with the real receiver
    # listening there; the allow-listed (unguarded) client reaches it.
    for host in ("localhost", "127.0.0.1"):
        async with delivery_client(2.0, guarded=True) as guarded:
            with pytest.raises(httpx.ConnectError) as refused:
                await guarded.post(f"http://{host}:{receiver.port}/hook", content=b"")
            assert isinstance(refused.value.__cause__, RefusedAddress)
    async with delivery_client(2.0, guarded=False) as trusted:
        assert (await trusted.post(f"http://127.0.0.1:{receiver.port}/hook", content=b"")).status_code == 200
    assert len(receiver.requests) == 1
