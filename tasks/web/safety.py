"""Which URLs may be requested at all: http(s) only, and only hosts whose every address is
public (no private, loopback, link-local, multicast, reserved or cloud metadata address),
unless the run allows private addresses. `check_url` answers before a request is made;
`PinnedBackend` repeats the address check at the moment of connecting and connects to the
very address it checked, so a name that re-resolves to 127.0.0.1 between the two
(DNS rebinding) cannot slip through."""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = frozenset({"http", "https"})
# Cloud instance metadata services: credentials live there, so they are named on their own.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata"})
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses embedded in IPv6 (RFC 6052)


class BlockedAddress(Exception):
    """A host resolved to an address the run may not connect to."""


class UnresolvableHost(Exception):
    """A host name that DNS does not resolve (a fetch error, not a blocked URL)."""


def address_problem(address: IPAddress) -> str | None:
    """Why an address is not a public one, or None when it is."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wearing IPv6 clothes is judged as the IPv4 address it carries.
        embedded = address.ipv4_mapped or address.sixtofour or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None)
        if embedded is not None:
            return address_problem(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (carrier-grade NAT)", isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return f"{'an' if name[0] in 'aeiou' else 'a'} {name} address"
    return None if address.is_global else "not a globally routable address"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address a host name (or literal) resolves to, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvableHost(f"cannot resolve {host}: {error}") from error
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    return addresses


def checked_addresses(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """The addresses of a host, every one of them allowed; raises BlockedAddress naming the
    first that is not, or UnresolvableHost."""
    if not allow_private and host.lower().rstrip(".") in METADATA_NAMES:
        raise BlockedAddress(f"{host} is a cloud metadata host")
    addresses = resolve(host, port)
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                where = f"is {problem}" if host.strip("[]") == str(address) else f"resolves to {address}, {problem}"
                raise BlockedAddress(f"{host} {where}")
    return addresses


def url_problem(url: str) -> str | None:
    """Why a URL is no http(s) URL with a host (no DNS asked), or None."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        return f"invalid URL {url!r}: {error}"
    if parsed.scheme not in SCHEMES:
        return f"{url}: scheme {parsed.scheme or '(none)'!r} is not http or https"
    if not parsed.host:
        return f"{url}: no host"
    return None


def check_url(url: str, allow_private: bool) -> str | None:
    """Why `url` may not be requested, or None when it may. A host that does not resolve is
    not refused here (None): the request then fails as a fetch error, which is transient."""
    problem = url_problem(url)
    if problem is not None or allow_private:
        return problem  # with private addresses allowed a lookup could refuse nothing
    parsed = httpx.URL(url)
    try:
        checked_addresses(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80), allow_private)
    except BlockedAddress as blocked:
        return f"{url}: {blocked}"
    except UnresolvableHost:
        return None
    return None


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's network layer with the address check in it: a connection is opened only
    to an address just resolved and checked, so what was checked is what is connected to.
    TLS still verifies the certificate against the host name (httpcore passes it as SNI)."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._plain = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Iterable | None = None
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port, self.allow_private)
        except UnresolvableHost as error:
            raise httpcore.ConnectError(str(error)) from error
        failure: Exception | None = None
        for address in addresses:  # the first that answers, like socket.create_connection
            try:
                return self._plain.connect_tcp(str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # getaddrinfo never answers an empty list
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        raise BlockedAddress("unix sockets are not web addresses")

    def sleep(self, seconds: float) -> None:
        self._plain.sleep(seconds)


@functools.cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; one context serves every client (it is thread-safe).
    return httpx.create_ssl_context(verify=verify, trust_env=False)


def pinned_transport(allow_private: bool, connections: int, verify: bool = True) -> httpx.HTTPTransport:
    """An httpx transport whose connections go through `PinnedBackend` and no proxy."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx.HTTPTransport(verify=_ssl_context(verify), trust_env=False, limits=limits)
    # httpx builds its pool without a way to pass a network backend, so the pool is rebuilt
    # with the same settings plus ours (httpx 0.28 keeps it in `_pool`; checked, not assumed).
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        raise RuntimeError("httpx.HTTPTransport no longer keeps its connection pool in _pool; PinnedBackend cannot be installed")
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_ssl_context(verify),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=PinnedBackend(allow_private),
    )
    return transport
