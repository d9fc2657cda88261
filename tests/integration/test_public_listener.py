"""The guarded listener in front of the public tracking endpoints (and the admin UI), over
real sockets and real TLS: connections that start no handshake, finish it and send nothing,
or trickle a request are cut off; one client network holds only its share of connections,
everyone together only the total; a trusted proxy only the total. And the real
`appliance track` process: its own descriptors, refusals and timeouts seen in its counters
and in the controller's /health."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable

import pytest
from aiohttp import web

from appliance.web.listener import GuardedListener, Limits
from tests.harness import Stack, wait_for

HANG = 20.0  # seconds: a bound that catches a hang, never a timing to meet


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def echo(request: web.Request) -> web.Response:
    return web.Response(text=f"{len(await request.read())} bytes")


@pytest.fixture
async def serve(certificate):
    """Start a guarded listener (TLS) with the given limits around a small app."""
    started: list[tuple[GuardedListener, web.AppRunner]] = []

    async def start(
        total: int = 50, per_network: int = 3, idle: float = 30.0, **extra
    ) -> GuardedListener:
        app = web.Application()
        app.router.add_post("/echo", echo)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle)
        await runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        limits = Limits(total, per_network, handshake=1.0, idle=idle, **extra)
        listener = GuardedListener(runner, limits, context)
        await listener.start("127.0.0.1", 0)
        started.append((listener, runner))
        return listener

    yield start
    for listener, runner in started:
        await listener.close()
        await runner.cleanup()


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def connect(port: int, source: str = "127.0.0.1", tls: bool = True) -> socket.socket:
    """A connection from `source` (any 127/8 address is this host's)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG, source_address=(source, 0))
    return client_context().wrap_socket(sock) if tls else sock


def closed_by_server(sock: socket.socket) -> bool:
    """Blocks until the server closes or resets the connection (True), or HANG passes."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def refused(port: int, source: str) -> bool:
    """A connection from `source` is reset or closed unanswered (the reset can come before
    the client has seen its connect complete)."""
    try:
        sock = connect(port, source, tls=False)
    except ConnectionResetError:
        return True
    with sock:
        return closed_by_server(sock)


def post(sock: socket.socket, body: bytes = b"hello") -> str:
    head = f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock.recv(4096).decode(errors="replace")


async def in_thread(function: Callable, *args):
    return await asyncio.to_thread(function, *args)


async def test_a_connection_that_never_starts_its_tls_handshake_is_dropped(serve):
    listener = await serve()
    sock = await in_thread(connect, listener.port, "127.0.0.1", False)
    with sock:
        assert await in_thread(closed_by_server, sock)
    await wait_for_async(lambda: listener.counters()["connections_open"] == 0)
    assert listener.counters()["handshakes_failed"] == 1


async def test_a_connection_that_sends_nothing_after_its_handshake_is_dropped(serve):
    listener = await serve(idle=1.0)
    sock = await in_thread(connect, listener.port)
    with sock:
        assert await in_thread(closed_by_server, sock)
    await wait_for_async(lambda: listener.counters()["connections_open"] == 0)


async def test_a_request_trickled_a_byte_at_a_time_is_cut_off(serve):
    """Slowloris: each byte well within any per-read timeout, the whole request never."""
    listener = await serve(idle=1.0)

    def trickle() -> int:
        sent = 0
        with connect(listener.port) as sock:
            for byte in b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return sent
                sent += 1
                time.sleep(0.05)
        return sent

    assert await in_thread(trickle) < 400  # cut off long before the request was whole


async def test_one_client_network_holds_only_its_share(serve):
    listener = await serve(per_network=3)
    held = [await in_thread(connect, listener.port, f"127.0.1.{i}") for i in (1, 2, 3)]
    assert listener.counters()["connections_open"] == 3
    assert await in_thread(refused, listener.port, "127.0.1.4")  # the same /24
    assert listener.counters()["connections_refused"] == 1
    with await in_thread(connect, listener.port, "127.0.2.1") as other:  # another /24
        assert "200 OK" in await in_thread(post, other)
    for sock in held:  # each held connection still works
        assert "5 bytes" in await in_thread(post, sock)
        sock.close()
    await wait_for_async(lambda: listener.counters()["connections_open"] == 0)
    with await in_thread(connect, listener.port, "127.0.1.5") as again:  # its share is back
        assert "200 OK" in await in_thread(post, again)


async def test_everyone_together_holds_only_the_total(serve):
    listener = await serve(total=4, per_network=2)
    held = [await in_thread(connect, listener.port, f"127.0.{n}.1") for n in (1, 1, 2, 2)]
    assert await in_thread(refused, listener.port, "127.0.3.1")
    assert listener.counters()["connections_refused"] == 1
    held.pop().close()
    await wait_for_async(lambda: listener.counters()["connections_open"] == 3)
    with await in_thread(connect, listener.port, "127.0.3.1") as now:
        assert "200 OK" in await in_thread(post, now)
    for sock in held:
        sock.close()


async def test_a_trusted_proxy_has_no_network_cap_only_the_total(serve):
    listener = await serve(total=5, per_network=1, is_proxy={"127.0.9.9"}.__contains__)
    held = [await in_thread(connect, listener.port, "127.0.9.9") for _ in range(5)]
    assert listener.counters()["connections_open"] == 5
    assert await in_thread(refused, listener.port, "127.0.9.9")
    for sock in held:
        sock.close()


async def wait_for_async(predicate) -> None:
    deadline = time.monotonic() + HANG
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the listener"
        await asyncio.sleep(0.02)


# the real process ----------------------------------------------------------------------
def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_the_tracking_process_caps_a_flood_and_keeps_serving_others(stack: Stack):
    """One client network opens 400 connections and sends nothing: 8 are held (and dropped
    after the timeout), the rest reset at once; the process holds about as many descriptors
    as before; a visitor from another network is served all along; the controller's /health
    shows the listener's counters."""
    stack.extra_env.update(
        APPLIANCE_TRACKING_CONNECTIONS_PER_NETWORK="8", APPLIANCE_TRACKING_TIMEOUT="2"
    )
    stack.start_controller(wait_ami=False)
    tracking = stack.start_tracking()
    before = open_descriptors(tracking.pid)
    flood = []
    for _ in range(400):
        with contextlib.suppress(OSError):  # reset while connecting: refused, as it should be
            flood.append(connect(stack.tracking_port, "127.0.5.1", tls=False))
    wait_for(lambda: stack.tracking_counters().get("tracking_connections_refused", 0) >= 392,
             timeout=HANG, what="the flood's refusals counted")  # fmt: skip
    assert open_descriptors(tracking.pid) <= before + 8 + 16  # 8 held, a few of its own
    snippet = f"https://127.0.0.1:{stack.tracking_port}/t/v1/snippet.js"
    with urllib.request.urlopen(snippet, context=client_context(), timeout=HANG) as answer:
        assert answer.status == 200
    wait_for(lambda: stack.tracking_counters().get("tracking_handshakes_failed", 0) >= 8,
             timeout=HANG, what="the 8 idle connections dropped")  # fmt: skip
    for sock in flood:
        sock.close()
    assert stack.counter("tracking_connections_refused") >= 392  # in the controller's /health
    assert stack.health() is not None
