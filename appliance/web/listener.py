"""A listening socket in front of an aiohttp server that no client can use to starve the
process: every connection is admitted by client network before it costs more than its
descriptor (appliance/admission.py), a TLS handshake gets a few seconds, and accept errors
are logged at a bounded rate.

asyncio's own server takes every connection the kernel hands it, waits 60 s for a TLS
handshake, and logs each failed accept with a traceback: one client that opens connections
and sends nothing holds descriptors until the process can open no file at all, and fills
the log. Here the accept loop is ours. After the handshake, aiohttp's keep-alive timeout
(`idle` below, set on the runner) closes a connection that has not sent a whole request in
time, as it closes one left idle between requests; a request body is bounded by the handler.

    runner = web.AppRunner(app, keepalive_timeout=limits.idle)
    await runner.setup()
    listener = GuardedListener(runner, limits, ssl_context)
    await listener.start(host, port)
    ...
    await listener.close()   # before runner.cleanup()
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance.admission import Admission, within_budget
from appliance.ratelimit import network_key

log = logging.getLogger(__name__)
# the process is out of descriptors or memory: wait a little, the next accept may succeed
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
PAUSE = 0.1  # seconds between accepts while the process is out of descriptors
WARN_EVERY = 10.0  # seconds: at most one log line per kind of trouble


@dataclass(frozen=True)
class Limits:
    total: int  # connections at once, from everyone
    per_network: int  # connections at once from one client network (IPv4 /24, IPv6 /48)
    handshake: float  # seconds a TLS handshake may take
    idle: float  # seconds to send a whole request, after the handshake or the last answer
    is_proxy: Callable[[str], bool] = lambda _address: False  # a trusted reverse proxy:
    # counted by its own address, with no per-network cap (its clients are behind it)


class Quieted:
    """Lets a log line through at most once per `every` seconds, and says how many it held
    back in between."""

    def __init__(self, every: float = WARN_EVERY) -> None:
        self.every = every
        self.last = -every
        self.skipped = 0

    def due(self) -> int | None:
        """None: stay quiet; else log now, and this many were held back since the last."""
        now = time.monotonic()
        if now - self.last < self.every:
            self.skipped += 1
            return None
        skipped, self.last, self.skipped = self.skipped, now, 0
        return skipped

    def warn(self, message: str, *args: object) -> None:
        skipped = self.due()
        if skipped is not None:
            log.warning(message + (f" ({skipped} more not logged)" if skipped else ""), *args)


class _Counted(asyncio.Protocol):
    """The aiohttp protocol of one connection, and the call that gives its slot back when
    the connection is gone."""

    def __init__(self, inner: asyncio.Protocol, closed: Callable[[], None]) -> None:
        self.inner = inner
        self.closed = closed
        self.made = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self.inner.connection_lost(exc)
        finally:
            self.closed()


class GuardedListener:
    def __init__(
        self,
        runner: web.BaseRunner,  # set up: its server makes each connection's protocol
        limits: Limits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if runner.server is None:
            raise RuntimeError("the runner is not set up")
        self.factory: Callable[[], asyncio.Protocol] = runner.server
        self.limits = limits
        self.ssl_context = ssl_context
        self.admission = Admission(limits.total, limits.per_network)
        self.sock: socket.socket | None = None
        self.accepting: asyncio.Task[None] | None = None
        self.handshakes: set[asyncio.Task[None]] = set()
        self.accept_errors = 0  # accepts that failed since start (out of descriptors, ...)
        self.handshakes_failed = 0  # TLS handshakes that failed or took too long
        self.exhausted = Quieted()
        self.refusing = Quieted()

    async def start(self, host: str, port: int) -> None:
        """Bind and listen (OSError as socket.bind raises it), then accept in the background."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(min(socket.SOMAXCONN, 1024))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.accepting = asyncio.get_running_loop().create_task(
            self._accept(sock), name=f"accept on {host}:{port}"
        )

    @property
    def port(self) -> int:
        assert self.sock is not None
        return int(self.sock.getsockname()[1])

    def counters(self) -> dict[str, int]:
        return {
            "connections_open": self.admission.count,
            "connections_refused": self.admission.refused,
            "handshakes_failed": self.handshakes_failed,
            "accept_errors": self.accept_errors,
        }

    async def close(self) -> None:
        """Stop accepting and drop the handshakes in progress; the connections aiohttp serves
        are the runner's to close (runner.cleanup())."""
        tasks = [t for t in (self.accepting, *self.handshakes) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as exc:
                self.accept_errors += 1
                if exc.errno in EXHAUSTED:
                    self.exhausted.warn("cannot accept connections: %s", exc.strerror)
                    await asyncio.sleep(PAUSE)
                continue  # a client that went away during the accept: nothing to do
            self._admit(conn, str(peer[0]))

    def _admit(self, conn: socket.socket, address: str) -> None:
        proxy = self.limits.is_proxy(address)
        key = f"proxy {address}" if proxy else network_key(address)
        if not self.admission.admit(key, capped=not proxy):
            self.refusing.warn(
                "connections refused: %d open, %d from %s (caps: %d, %d per network)",
                self.admission.count,
                self.admission.open[key],
                key,
                self.limits.total,
                self.limits.per_network,
            )
            _reset(conn)
            return
        task = asyncio.get_running_loop().create_task(self._serve(conn, key))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    async def _serve(self, conn: socket.socket, key: str) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.admission.release(key)

        protocol = _Counted(self.factory(), release)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: protocol,
                conn,
                ssl=self.ssl_context,
                ssl_handshake_timeout=self.limits.handshake if self.ssl_context else None,
            )
        except (OSError, TimeoutError):  # SSL errors and handshake timeouts are OSErrors
            self.handshakes_failed += 1
            if not protocol.made:  # else connection_lost gives the slot back
                release()
        except BaseException:  # cancelled (the listener closes): the slot goes with it
            if not protocol.made:
                release()
            raise
        # the transport owns the socket now: it closes it however the connection ends


def _reset(conn: socket.socket) -> None:
    """Close at once, with a reset rather than a goodbye: nothing is kept for this peer."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def descriptor_limit() -> int:
    """This process's descriptor limit, raised first to the hard limit where allowed (the
    units set LimitNOFILE= deliberately; a shell's soft limit is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):  # a seccomp filter without @resources: keep the soft one
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def limits_for(
    what: str, total: int, per_network: int, timeout: float, reserve: int, **extra: Any
) -> Limits:
    """The caps of a listener, within what the process's descriptors allow (said once in the
    log when the configured total does not fit)."""
    descriptors = descriptor_limit()
    fitting = within_budget(total, descriptors, reserve)
    if fitting < total:
        log.warning(
            "%s: %d connections at once, not %d: the descriptor limit is %d (LimitNOFILE=)",
            what,
            fitting,
            total,
            descriptors,
        )
    return Limits(fitting, min(per_network, fitting), timeout, timeout, **extra)
