"""Which address a request comes from, for rate limits: the peer, or what a trusted proxy says.

Behind a reverse proxy (or Docker's bridge network) every request arrives from the proxy's
address, so per-address limits would put every shopper in one bucket. The proxy's
``X-Forwarded-For`` header names the real client, but anyone can send that header, so it is
believed only when the peer is inside ``SHOPFRONT_TRUSTED_PROXIES`` (CIDR blocks, e.g.
``172.17.0.0/16`` for Docker's default bridge). The header is read from the right: the last
address not itself a trusted proxy is the client (addresses to its left were written by the
client and are not believed). A block that trusts every address (``*``, ``0.0.0.0/0``,
``::/0``) is refused at start-up.

`bucket_key` groups addresses the way one client holds them: an IPv4 address alone, an IPv6
address by its /64 network (one host usually controls a whole /64).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IPV6_CLIENT_PREFIX = 64


def parse_trusted(blocks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The CIDR blocks of trusted proxies; `ValueError` naming a bad or all-trusting one."""
    out: list[IPNetwork] = []
    for raw in blocks:
        text = raw.strip()
        if not text:
            continue
        if text == "*":
            raise ValueError("'*' would trust a client-chosen X-Forwarded-For; name the CIDR")
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an address or CIDR block") from None
        if network.prefixlen == 0:
            raise ValueError(f"{text!r} trusts every address; name the proxy's own CIDR")
        out.append(network)
    return tuple(out)


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class ClientAddresses:
    """Resolves a request's client address from its peer and headers."""

    trusted: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, blocks: Iterable[str]) -> ClientAddresses:
        return cls(parse_trusted(blocks))

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def resolve(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The client's address: the peer, unless the peer is a trusted proxy and sent
        ``X-Forwarded-For`` (then the right-most address in it that is not a trusted proxy)."""
        if peer is None:
            return None
        address = _address(peer)
        if address is None or not self.trusted or not self._is_trusted(address):
            return peer
        forwarded = headers.get("x-forwarded-for", "")
        for hop in reversed(forwarded.split(",")):
            candidate = _address(hop)
            if candidate is None:
                return str(address)  # a garbled header: fall back to the proxy itself
            if not self._is_trusted(candidate):
                return str(candidate)
            address = candidate
        return str(address)


def bucket_key(address: str) -> str:
    """The rate-limit bucket of ``address``: IPv4 as is, IPv6 by its /64 network."""
    parsed = _address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(parsed)
