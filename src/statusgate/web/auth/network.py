"""Client IP allowlist, with forwarding headers believed only from trusted proxies.

A forwarding header is just text the sender wrote, so it is read only when the TCP peer
is one of our own proxies. Even then the list is read from the right: each trusted proxy
appends the address it received from, so the right-most entry that is not one of ours is
the first hop we did not control — the left-most entries are whatever the client claimed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from statusgate.web.auth.base import AuthenticationError, VerifiableRequest, VerifierBase

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IpAllowlistVerifier(VerifierBase):
    method = "ip_allowlist"

    def __init__(
        self,
        networks: Sequence[str],
        trusted_proxy_header: str | None = None,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self._networks = tuple(_network(n) for n in networks)
        self._header = trusted_proxy_header.lower() if trusted_proxy_header else None
        self._proxies = tuple(_network(n) for n in trusted_proxies)

    def verify(self, request: VerifiableRequest) -> None:
        client = self.client_address(request)
        if not _in_any(client, self._networks):
            raise AuthenticationError(f"client address {client} is not in the allowlist")

    def client_address(self, request: VerifiableRequest) -> IPAddress:
        if not request.peer:
            raise AuthenticationError("the client address is unknown")
        peer = parse_address(request.peer)
        if peer is None:
            raise AuthenticationError("the peer address is not an IP address")
        if self._header is None or not _in_any(peer, self._proxies):
            return peer

        entries = _forwarded_entries(self._header, request.header_values(self._header))
        if not entries:
            # Fail closed: falling back to the proxy's own address would let every
            # request through whenever the proxy's network is allowlisted.
            raise AuthenticationError(f"trusted proxy {peer} sent no {self._header} header")
        for entry in reversed(entries):
            address = parse_address(entry)
            if address is None:
                raise AuthenticationError(f"header {self._header} holds a non-address entry")
            if not _in_any(address, self._proxies):
                return address
        # Every hop is one of our proxies: the request originated at the first of them.
        first = parse_address(entries[0])
        assert first is not None  # every entry parsed in the loop above
        return first


def parse_address(value: str) -> IPAddress | None:
    """An address as forwarding headers and peers spell it: ``1.2.3.4``, ``1.2.3.4:80``,
    ``::1``, ``[::1]:80``, ``"[::1]"``; an IPv4-mapped IPv6 address becomes IPv4."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
        return address.ipv4_mapped
    return address


def _forwarded_entries(header: str, values: list[str]) -> list[str]:
    """Hop addresses, left to right, across repeated headers (RFC 9110 §5.3: repeated
    fields are one comma-separated list). ``Forwarded`` (RFC 7239) is read for its
    ``for=`` parameters; any other header (X-Forwarded-For, X-Real-IP...) is a plain list."""
    elements = [e.strip() for value in values for e in value.split(",") if e.strip()]
    if header != "forwarded":
        return elements
    addresses = []
    for element in elements:
        found = ""
        for pair in element.split(";"):
            key, _, val = pair.partition("=")
            if key.strip().lower() == "for":
                found = val
        # An element without for= stays in the list as an unparseable hop.
        addresses.append(found)
    return addresses


def _network(value: str) -> IPNetwork:
    return ipaddress.ip_network(value, strict=False)


def _in_any(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    # `in` across IP versions is simply False, so mixed lists need no special case.
    return any(address in network for network in networks)
