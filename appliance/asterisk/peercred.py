"""Who is at the other end of a loopback TCP connection: the uid owning the peer's socket.

Loopback is not a credential: any local user can connect to the FastAGI port, and any local
user can listen on the AMI port while Asterisk is down. Both ends of a loopback connection are
sockets on this host, and the kernel knows each one's owner: one sock_diag netlink request
(the interface `ss` uses) looks the peer's socket up by its four-tuple, in constant time
whatever the number of sockets, and answers with its uid. Anything unexpected means None:
the caller refuses the peer.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
NO_COOKIE = 0xFFFFFFFF
ALL_STATES = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_REQUEST = struct.Struct("=BBBBI")  # family, protocol, extensions, pad, states
_SOCKID = struct.Struct(">HH16s16s")  # ports and addresses, in network order
_CHOOSE = struct.Struct("=III")  # interface, cookie (two words, host order): any
_UID_AT = _HEADER.size + 4 + 48 + 12  # in inet_diag_msg: after the sock id, expires, queues


def _address(host: str) -> tuple[int, bytes]:
    ip = ipaddress.ip_address(host.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    return family, ip.packed.ljust(16, b"\0")


def request(peer: tuple[str, int], ours: tuple[str, int]) -> bytes:
    """The netlink message asking for the socket bound to `peer` and connected to `ours`."""
    family, source = _address(peer[0])
    _, destination = _address(ours[0])
    body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_STATES)
    body += _SOCKID.pack(peer[1], ours[1], source, destination)
    body += _CHOOSE.pack(0, NO_COOKIE, NO_COOKIE)
    return _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0) + body


def uid_of_reply(reply: bytes) -> int | None:
    """The socket owner in a sock_diag reply; None for an error or anything short."""
    if len(reply) < _UID_AT + 4:
        return None
    length, kind, _flags, _seq, _pid = _HEADER.unpack_from(reply)
    if kind != SOCK_DIAG_BY_FAMILY or length < _UID_AT + 4:
        return None
    return int(struct.unpack_from("=I", reply, _UID_AT)[0])


def peer_uid(sock: socket.socket) -> int | None:
    """The uid owning the other end of a connected loopback TCP socket, or None."""
    try:
        ours, theirs = sock.getsockname()[:2], sock.getpeername()[:2]
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as diag:
            diag.settimeout(1.0)
            diag.sendto(request(theirs, ours), (0, 0))
            return uid_of_reply(diag.recv(8192))
    except (OSError, ValueError):
        return None
