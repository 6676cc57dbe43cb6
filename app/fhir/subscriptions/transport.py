"""HTTP clients for delivery: one that connects only to addresses a subscriber may name, and one for
endpoints on the operator's allow-list.

The guard sits where the connection is made, not before the request: the host is resolved once, every
address is checked, and the connection goes to a checked address. Checking first and letting the client
resolve again would let a name that answers differently the second time (DNS rebinding) reach loopback.
TLS still verifies the certificate against the host name of the endpoint (httpcore passes the URL's host
as server_hostname, whatever address the stream is connected to).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

from app.fhir.subscriptions.endpoints import refused_address


class RefusedAddress(httpcore.ConnectError):
    """The endpoint's host resolves to a loopback, link-local, unspecified or multicast address."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        if not addresses:
            raise httpcore.ConnectError("the endpoint's host has no address")
        if any(refused_address(ipaddress.ip_address(a)) for a in addresses):
            raise RefusedAddress("the endpoint's host resolves to a refused address")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("notifications are not sent to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, seconds: float | None) -> list[str]:
    """Every address of `host`, in the resolver's order, without duplicates (scope ids dropped)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise httpcore.ConnectError("the endpoint's host could not be resolved") from exc
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def delivery_client(timeout: float, guarded: bool) -> httpx.AsyncClient:
    """A client without redirects (a 3xx is a failed delivery, never a second destination) and without
    proxies from the environment. `guarded`: connect only to addresses a subscriber may name."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    if guarded:
        # httpx has no parameter for the network backend; its pool is rebuilt with the same defaults.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(),
        )
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)
