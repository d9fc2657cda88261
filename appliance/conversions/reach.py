"""Which addresses webhooks and ad platforms may reach, pure.

A destination is an address an admin types in. Left unchecked, an admin of one agency could
point it at this machine (AMI, SMTP, the database, the admin UI), at its private networks or at
a cloud's metadata service, and read what answered in the delivery log. So every connection
the outbox makes is checked here on the very address it connects to (a name that resolved to a
public address when it was saved may resolve to 127.0.0.1 now), and the forms refuse the
obvious cases when a destination is saved. Ranges an admin really needs (a CRM on the LAN, a
test receiver on loopback) are listed in destinations.allowed_networks.

The refused ranges are written out rather than taken from `ipaddress`' is_private/is_global,
whose meaning moves between Python versions and which also refuse the documentation ranges."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(network), why)
    for network, why in (
        ("0.0.0.0/8", "unspecified"),  # 0.0.0.0 reaches this machine
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("169.254.0.0/16", "link-local"),  # cloud metadata services live here
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # and the broadcast address
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private"),  # site-local, deprecated
        ("ff00::/8", "multicast"),
    )
)
# IPv6 ranges that carry an IPv4 address a gateway may forward to
NAT64 = ipaddress.ip_network("64:ff9b::/96")
COMPATIBLE = ipaddress.ip_network("::/96")  # IPv4-compatible, deprecated
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def refusal(address: str, allowed: Sequence[Network] = ()) -> str | None:
    """Why a connection to `address` (an IP address, as connect() gets it) is refused, in a
    word or two ("loopback", "private", ...); None when it may go ahead."""
    try:
        ip: Address = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in network for network in allowed):
        return None
    for network, why in REFUSED:
        if ip in network:
            return why
    inner = _carried(ip)
    return None if inner is None else refusal(str(inner), allowed)


def _carried(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a NAT64, 6to4 or IPv4-compatible IPv6 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or ip in COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def literal(host: str) -> Address | None:
    """The address a host name stands for without asking DNS: an IP address in any form the
    system's resolver takes as one (2130706433, 0x7f000001, 0177.0.0.1 and 127.1 are all
    127.0.0.1), or None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # pure: parses, asks nobody
    except OSError:
        return None


def host_refusal(host: str, allowed: Sequence[Network] = ()) -> str | None:
    """Why a destination's host is refused when it is saved: an address (in any form) that
    `refusal` refuses, or a name that always means this machine. Other names are checked
    when the outbox connects."""
    name = host.lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return refusal("127.0.0.1", allowed)
    address = literal(name)
    return None if address is None else refusal(str(address), allowed)


def is_allowed_literal(host: str, allowed: Sequence[Network]) -> bool:
    """Whether the host is an address inside destinations.allowed_networks (where a webhook
    may be plain http: a receiver the admin named by its address)."""
    address = literal(host.lower().rstrip("."))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and any(address in network for network in allowed)
