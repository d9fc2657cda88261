"""Who a client is behind reverse proxies: the one rule both listeners (the admin UI and the
tracking endpoints) use to read X-Forwarded-For.

A proxy appends the address it was connected from to X-Forwarded-For, so the list is written
left to right by ever more trusted hands, and only its right end can be believed. From the
peer that connected, walk the list right to left while the address in hand is a trusted
proxy; the first address that is not one is the client. From any other peer the header is
ignored: anyone can write it, to dodge a throttle or to put another address in the audit log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Proxies = tuple[Network, ...]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_proxies(text: str) -> Proxies:
    """Space-separated addresses or networks (CIDR); ValueError names the one that is not,
    or that would trust every address."""
    found = []
    for word in text.split():
        try:
            network = ipaddress.ip_network(word, strict=False)
        except ValueError:
            raise ValueError(f"{word[:60]!r} is not an address or a network (CIDR)") from None
        if network.prefixlen == 0:
            raise ValueError(f"{word!r} would trust every address: name the proxies")
        found.append(network)
    return tuple(found)


def _address(text: str) -> Address | None:
    """An address as one of ours: IPv4 for an IPv4-mapped IPv6 address (a dual-stack socket's
    view of an IPv4 peer), None for anything that is not an address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Proxies) -> bool:
    return any(address in network for network in proxies)


def is_proxy(peer: str, proxies: Proxies) -> bool:
    """Whether the peer that connected is one of the trusted proxies."""
    address = _address(peer)
    return address is not None and _trusted(address, proxies)


def client_address(peer: str | None, forwarded_for: Iterable[str], proxies: Proxies) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last
    address of X-Forwarded-For (every header of that name, in order) that is not one.

    A hop that is not an address (a proxy that writes "unknown", a port, garbage sent by the
    client and passed on) ends the walk at the last trusted address: clients that cannot be
    told apart then share the proxy's budgets, which is the safe side."""
    address = _address(peer or "")
    if address is None:
        return peer or ""
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    while _trusted(address, proxies) and hops:
        hop = _address(hops.pop())
        if hop is None:
            break
        address = hop
    return str(address)
