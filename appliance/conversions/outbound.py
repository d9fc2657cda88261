"""The HTTP client every delivery leaves through, and the short reason one failed.

The client opens each connection only after `reach` has allowed the very address it is about
to connect to (aiohttp hands its socket factory the resolved address): names, addresses in
any spelling and DNS answers that changed since the destination was saved all meet the same
check, and nothing is connected to twice. A failure is kept as one of a few fixed reasons,
never what the far end said (a banner, an error page) nor the address asked for (its path
and query often hold a secret)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import aiohttp

from appliance.config import DestinationsConfig
from appliance.conversions import reach


class RefusedAddress(OSError):
    """The address is one destinations may not reach (this machine, a private network)."""

    def __init__(self, why: str) -> None:
        super().__init__(f"refused: {why} address")


def guarded_socket(
    allowed: tuple[reach.Network, ...],
) -> Callable[[tuple[Any, ...]], socket.socket]:
    """aiohttp's socket factory: a socket for an address `reach` allows, else RefusedAddress
    (before anything is sent)."""

    def make(addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto, _, address = addr_info
        why = reach.refusal(str(address[0]), allowed)
        if why is not None:
            raise RefusedAddress(why)
        return socket.socket(family, kind, proto)

    return make


def client(config: DestinationsConfig) -> aiohttp.ClientSession:
    """The session deliveries are sent with (no proxy from the environment: the check is on
    the address connected to)."""
    connector = aiohttp.TCPConnector(socket_factory=guarded_socket(config.allowed))
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=config.timeout), trust_env=False
    )


def refused(exc: BaseException) -> bool:
    return isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
        exc.os_error, RefusedAddress
    )


def final(exc: BaseException) -> bool:
    """Whether trying again cannot help: the address is refused, or no address at all (the
    client takes only canonical IPv4: 127.1 and 2130706433 are refused before any lookup)."""
    return refused(exc) or isinstance(exc, aiohttp.InvalidURL)


def reason(exc: BaseException) -> str:
    """What the delivery log keeps of a failed send: a fixed phrase for the kind of failure."""
    if refused(exc):
        assert isinstance(exc, aiohttp.ClientConnectorError)
        return str(exc.os_error)
    if isinstance(exc, aiohttp.InvalidURL):
        return "not a valid address"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not trusted"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "could not connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "closed without an answer"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return "the answer is not HTTP"
    return "the connection failed"
