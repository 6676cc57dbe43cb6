"""Where notifications may be sent: the endpoint allow-list and the addresses no subscriber may name.

A subscription makes this server send requests wherever its endpoint says, so an endpoint on the server's
own machine or link (its admin ports, a cloud metadata service on 169.254.169.254) would let any client
with a Subscription scope reach them. Hence:

- Without an allow-list, any http(s) endpoint is accepted except one that names a loopback (127.0.0.0/8,
  ::1, `localhost`), link-local (169.254.0.0/16, fe80::/10), unspecified or multicast address. A host
  name is resolved again on every connection and refused if any address is one of those (DNS rebinding).
- With an allow-list, only the endpoints it names are accepted, and as named: the operator vouches for
  them, so a listed host may be on loopback (tests and side-cars).

Entries: a URL prefix (`https://hooks.example.no/fhir`: same scheme, host and port, and the path or a
sub-path of it), a host (`hooks.example.no`, any scheme, port and path), or `*.example.no` (any host
below example.no).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network": 0.x.x.x reaches the local host on Linux
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fe80::/10",
        "ff00::/8",
    )
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Printable ASCII without space: no CR/LF (header injection), no other control characters.
_URL_TEXT = re.compile(r"[\x21-\x7e]+")
# What the C library's inet_aton reads as IPv4 besides dotted quads: 127.1, 2130706433, 0x7f.0.0.1.
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")
_HOST_NAME = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def refused_address(address: IPAddress) -> bool:
    """Loopback, link-local, unspecified or multicast (IPv4-mapped IPv6 judged as the IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _REFUSED_NETWORKS)


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for (in any form the resolver accepts)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _normal_host(host: str) -> str:
    """Lower case without a trailing dot; IP literals in one canonical form (127.1 is 127.0.0.1)."""
    host = host.lower().rstrip(".").removeprefix("[").removesuffix("]")
    address = literal_address(host)
    return host if address is None else str(address)


def _local_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")  # RFC 6761: always loopback


@dataclass(frozen=True)
class _Entry:
    host: str  # lower case; "*.example.no" matches hosts below example.no
    scheme: str | None = None  # None: a host entry (any scheme, port and path)
    port: int | None = None
    path: str = ""

    def matches(self, parts: SplitResult, host: str) -> bool:
        if self.host.startswith("*."):
            if not host.endswith(self.host[1:]):
                return False
        elif host != self.host:
            return False
        if self.scheme is None:
            return True
        if parts.scheme != self.scheme or _port(parts) != self.port:
            return False
        path = parts.path or "/"
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS[parts.scheme]


def _parse_entry(text: str) -> _Entry:
    if "://" not in text:
        host = _normal_host(text)
        if literal_address(host) is None and not _HOST_NAME.fullmatch(host):
            raise ValueError(f"allow-list entry {text!r} is neither a URL prefix nor a host")
        return _Entry(host)
    parts = urlsplit(text)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"allow-list entry {text!r} must be an http(s) URL prefix without query")
    return _Entry(_normal_host(parts.hostname), parts.scheme, _port(parts), parts.path or "/")


@dataclass(frozen=True)
class EndpointPolicy:
    allowlist: tuple[_Entry, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> EndpointPolicy:
        """Raises ValueError for an entry that cannot be read (a configuration error: fail at start-up)."""
        return cls(tuple(_parse_entry(e.strip()) for e in entries if e.strip()))

    def allow_listed(self, endpoint: str) -> bool:
        parts = urlsplit(endpoint)
        host = _normal_host(parts.hostname or "")
        return any(entry.matches(parts, host) for entry in self.allowlist)

    def refusal(self, endpoint: str) -> str | None:
        """Why notifications may not go to `endpoint`, or None. Text only: names resolve at delivery."""
        if not _URL_TEXT.fullmatch(endpoint):
            return "channel.endpoint must be printable ASCII without spaces or control characters"
        parts = urlsplit(endpoint)
        try:
            if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or _port(parts) <= 0:
                return "channel.endpoint must be an absolute http(s) URL"
        except ValueError:  # a port that is not a number
            return "channel.endpoint must be an absolute http(s) URL"
        if parts.username is not None or parts.password is not None:
            return "channel.endpoint must not carry credentials; use channel.header"
        if self.allowlist:
            if self.allow_listed(endpoint):
                return None
            return "channel.endpoint is not on this server's list of allowed notification endpoints"
        host = _normal_host(parts.hostname)
        address = literal_address(host)
        if _local_name(host) or (address is not None and refused_address(address)):
            return "channel.endpoint must not be a loopback, link-local or unspecified address"
        return None
