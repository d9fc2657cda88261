"""A small FastAGI server that can never stall the event loop or the caller.

Only Asterisk may ask: a connection from a socket owned by any other local user is closed
unanswered. Each request gets a fixed time budget for reading its headers, deciding and
writing its answer. A handler may ask the channel for values (GET FULL VARIABLE) and set
variables while it works, one command at a time; what it returns is set last. Anything
hostile, slow or broken is dropped: the dialplan then finds no complete answer (its ready
flag unset) and takes the compiled route.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Collection, Mapping

from appliance.asterisk.agi_protocol import (
    MAX_HEADERS,
    MAX_LINE,
    AgiProtocolError,
    AgiRequest,
    build_request,
    get_full_variable,
    parse_header,
    result_code,
    result_value,
    set_variable,
)
from appliance.asterisk.peercred import peer_uid

log = logging.getLogger(__name__)


class AgiChannel:
    """The call's channel, as a handler sees it: one command at a time, each answered before
    the next (Asterisk reads AGI commands through a buffered stream but waits on the socket,
    so a pipelined second command would sit unseen)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def command(self, line: str) -> str:
        """Send one command line; return Asterisk's reply line."""
        self.writer.write(line.encode())
        await self.writer.drain()
        reply = (await self.reader.readline()).decode("utf-8", "replace").strip()
        if not reply:
            raise ConnectionError("Asterisk hung up in the middle of the AGI commands")
        return reply

    async def set_variable(self, name: str, value: str) -> bool:
        reply = await self.command(set_variable(name, value))
        if result_code(reply) is None:
            log.warning("Asterisk refused SET VARIABLE %s: %s", name, reply[:80])
            return False
        return True

    async def get_full_variable(self, expression: str) -> str | None:
        """The value of `expression` on the channel; None when it is unset or refused."""
        return result_value(await self.command(get_full_variable(expression)))


Handler = Callable[[AgiRequest, AgiChannel], Awaitable[Mapping[str, str]]]


class FastAgiServer:
    def __init__(
        self,
        handlers: Mapping[str, Handler],
        timeout: float,
        allowed_uids: Collection[int],
        uid_of: Callable[[socket.socket], int | None] = peer_uid,
    ) -> None:
        self.handlers = dict(handlers)
        self.timeout = timeout
        self.allowed_uids = frozenset(allowed_uids)
        self.uid_of = uid_of
        self.server: asyncio.Server | None = None
        self.refused = 0  # connections from other local users, since start
        self.answered = 0  # requests answered in full, since start
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, limit=MAX_LINE)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers):
            writer.close()
        if self.server is not None:
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        uid = self.uid_of(writer.get_extra_info("socket"))
        if uid not in self.allowed_uids:
            self.refused += 1
            log.warning("FastAGI connection from %s (uid %s) refused: not Asterisk", peer, uid)
            writer.close()
            return
        self._writers.add(writer)
        try:
            async with asyncio.timeout(self.timeout):
                await self._answer(reader, writer)
        except TimeoutError:
            log.warning(
                "FastAGI request from %s took over %.1fs; left to the compiled route",
                peer,
                self.timeout,
            )
        except AgiProtocolError as exc:
            log.warning("FastAGI request from %s dropped: %s", peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("FastAGI peer %s went away: %s", peer, exc)
        except Exception:
            log.exception("FastAGI request from %s failed; left to the compiled route", peer)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = build_request(await read_headers(reader))
        handler = self.handlers.get(request.script)
        if handler is None:
            raise AgiProtocolError(f"unknown AGI script {request.script[:40]!r}")
        channel = AgiChannel(reader, writer)
        variables = await handler(request, channel)
        if not variables:
            return
        for name, value in variables.items():
            await channel.set_variable(name, value)
        self.answered += 1


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if not headers and not exc.partial:
                raise ConnectionError("closed before sending anything") from None
            raise AgiProtocolError("connection closed in the middle of the headers") from None
        except asyncio.LimitOverrunError:
            raise AgiProtocolError(f"header line longer than {MAX_LINE} bytes") from None
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            return headers
        if len(headers) >= MAX_HEADERS:
            raise AgiProtocolError(f"more than {MAX_HEADERS} headers")
        name, value = parse_header(line)
        headers[name] = value
