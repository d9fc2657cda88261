"""Which connections a listener takes, pure: a cap on all of them and a smaller cap per client
network, so that one network (an IPv4 /24, an IPv6 /48: what one party gets cheaply) can
hold only its share of the descriptors, and the listener as a whole never holds more than
its process can spare.

    admission = Admission(total=4096, per_network=64)
    key = network_key(peer_address)     # appliance/ratelimit.py
    if admission.admit(key):    # take the connection ...
        ...
        admission.release(key)  # ... exactly once, when it closes
"""

from __future__ import annotations

from collections import Counter


class Admission:
    def __init__(self, total: int, per_network: int) -> None:
        if total < 1 or per_network < 1:
            raise ValueError("connection caps must be at least 1")
        self.total = total
        self.per_network = per_network
        self.open: Counter[str] = Counter()
        self.count = 0
        self.refused = 0  # connections refused since start

    def admit(self, network: str, capped: bool = True) -> bool:
        """Take one more connection from `network`, or refuse it (and count the refusal).
        `capped=False`: no cap of its own (a trusted reverse proxy, whose clients are many)."""
        if self.count >= self.total or (capped and self.open[network] >= self.per_network):
            self.refused += 1
            return False
        self.open[network] += 1
        self.count += 1
        return True

    def release(self, network: str) -> None:
        """A connection `admit` took has closed."""
        if self.open[network] <= 0:
            raise ValueError(f"no open connection from {network} to release")
        self.open[network] -= 1
        if not self.open[network]:
            del self.open[network]
        self.count -= 1

    def networks(self) -> int:
        """How many client networks hold a connection now."""
        return len(self.open)


def within_budget(wanted: int, descriptors: int, reserve: int) -> int:
    """The connection cap a process can afford: what is asked, but never more than its
    descriptor limit leaves after `reserve` for everything else it opens (at least 1)."""
    return max(1, min(wanted, descriptors - reserve))
