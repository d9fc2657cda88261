"""Who is at the other end of a loopback TCP connection: the uid owning the peer's socket.

Loopback is not a credential: any local user can connect to the FastAGI port, and any local
user can listen on the AMI port while Asterisk is down. Both ends of a loopback connection are
sockets on this host, listed with their owner in /proc/net/tcp{,6}; the controller answers
FastAGI only for Asterisk's user and sends its AMI secret only to Asterisk's listener.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

PROC = Path("/proc/net")


def _address(text: str) -> tuple[str, int]:
    """'0100007F:1F90' (the kernel's byte order, word by word) -> ('127.0.0.1', 8080)."""
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(struct.pack("<I", w) for w in struct.unpack(f">{len(raw) // 4}I", raw))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address), int(port, 16)


def owner(table: str, local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The uid of the socket with this local and remote address in a /proc/net/tcp table."""
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            if _address(fields[1]) == local and _address(fields[2]) == remote:
                return int(fields[7])
        except ValueError:
            continue
    return None


def _normal(address: tuple[str, int]) -> tuple[str, int]:
    ip = ipaddress.ip_address(address[0].split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(address[1])


def peer_uid(sock: socket.socket) -> int | None:
    """The uid owning the other end of a connected loopback TCP socket, or None."""
    ours, theirs = _normal(sock.getsockname()[:2]), _normal(sock.getpeername()[:2])
    for name in ("tcp", "tcp6"):
        try:
            table = (PROC / name).read_text()
        except OSError:
            continue
        uid = owner(table, theirs, ours)
        if uid is not None:
            return uid
    return None
