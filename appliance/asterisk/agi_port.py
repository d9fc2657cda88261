"""The FastAGI port as the kernel sees it: whether users other than root may listen on it,
and who listens on it now, read from /proc rather than by connecting to it (the controller
counts every connection that is not Asterisk's as an intrusion).

Asterisk's dynamic routes connect to agi.port and do what the server there answers: EXEC of
any application (a recording whose command runs a program as asterisk, a Dial to any number
over the trunk); Asterisk has no way to limit what a FastAGI server may ask. The port is below
1024 so that only root may take it while the controller is down, and that holds only while
net.ipv4.ip_unprivileged_port_start is above it (containers often set it to 0). The pure
functions take what the readers return."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SYSCTL = "net.ipv4.ip_unprivileged_port_start"
SYSCTL_FILE = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
DROP_IN = "/etc/sysctl.d/90-appliance.conf"  # scripts/install writes it
TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
LISTEN = "0A"  # a socket's state in those tables


def unprivileged_port_start(path: Path = SYSCTL_FILE) -> int | None:
    """The sysctl, for this network namespace; None where the kernel has none (before Linux
    4.11 the line was fixed at 1024)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def open_to_others(start: int | None, port: int) -> bool:
    """Whether any local user may listen on `port`, given the sysctl's value."""
    return start is not None and start <= port


def danger(start: int, port: int) -> str:
    return (
        f"{SYSCTL} is {start}: while the controller is down any local user may listen on "
        f"the FastAGI port {port} and answer Asterisk's dynamic routes with commands it runs"
    )


def fix(port: int) -> str:
    return (
        f"raise it above {port}: echo '{SYSCTL} = 1024' > {DROP_IN} && systemctl restart "
        "systemd-sysctl (scripts/install writes that file)"
    )


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    uid: int


def listeners(table: str, byteorder: str = sys.byteorder) -> list[Listener]:
    """The listening sockets of a /proc/net/tcp or /proc/net/tcp6 table (addresses there are
    32-bit words in the host's byte order; IPv4-mapped ones are given as IPv4)."""
    found = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[3] != LISTEN:
            continue
        address, _, port = fields[1].rpartition(":")
        raw = bytes.fromhex(address)
        if byteorder == "little":
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        ip = ipaddress.ip_address(raw)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # an IPv6 socket on ::ffff:127.0.0.1 takes 127.0.0.1's calls
        found.append(Listener(str(ip), int(port, 16), int(fields[7])))
    return found


def holders(found: Iterable[Listener], host: str, port: int) -> list[Listener]:
    """The listeners a connection to host:port reaches (its own address, or any address)."""
    takes = {host, "0.0.0.0", "::"}  # compared, not bound
    return [one for one in found if one.port == port and one.address in takes]


def read_listeners(tables: Iterable[Path] = TCP_TABLES) -> list[Listener]:
    found: list[Listener] = []
    for table in tables:
        try:
            found += listeners(table.read_text())
        except OSError:  # no IPv6 on this host
            continue
    return found
