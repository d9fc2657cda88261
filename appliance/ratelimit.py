"""Token buckets per client: `burst` at once, then one more every `refill` seconds. Bounded:
when too many clients are known, the longest-quiet ones are forgotten, never all of them."""

from __future__ import annotations

import functools
import ipaddress
import time
from collections import OrderedDict

MAX_CLIENTS = 10_000


class Buckets:
    def __init__(self, burst: int, refill: float, clients: int = MAX_CLIENTS) -> None:
        self.burst = burst
        self.refill = refill
        self.clients = clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, since = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - since) / self.refill)
        while len(self._buckets) >= self.clients:
            self._buckets.popitem(last=False)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - 1, now)
        return True


@functools.lru_cache(maxsize=65536)  # the same addresses ask again and again
def client_key(address: str | None) -> str:
    """Who a client is, for budgets: an IPv4 address, or an IPv6 /64 (one host can use a
    whole /64)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return address or ""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@functools.lru_cache(maxsize=65536)
@functools.lru_cache(maxsize=65536)
def network_key(address: str | None) -> str:
    """Which network a client is in, for what one party could otherwise take many of (pool
    numbers, sessions, stored pages, connections): an IPv4 /24 or an IPv6 /48, the blocks
    one customer of a provider commonly gets. A link-local peer's zone (%eth0) is left out."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return address or ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
