"""sd_notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from appliance import sdnotify

INTERVAL = 0.1  # seconds between pings for WATCHDOG_USEC=200000
HANG = 10.0  # seconds a message may take: a bound against a hang, not a timing


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A datagram socket in tmp_path, named by NOTIFY_SOCKET as systemd would."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield sock


def drain(sock: socket.socket) -> list[str]:
    """Every datagram already queued, without waiting."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


async def receive(sock: socket.socket) -> str:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), HANG)
    return data.decode()


def test_ready_and_stopping_arrive(systemd: socket.socket):
    assert sdnotify.ready() is True
    assert sdnotify.stopping() is True
    assert drain(systemd) == ["READY=1", "STOPPING=1"]


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch):
    name = f"appliance-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("STATUS=up")
        assert drain(sock) == ["STATUS=up"]


def test_nothing_without_notify_socket(systemd: socket.socket, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NOTIFY_SOCKET")
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    assert sdnotify.ready() is False
    assert sdnotify.watchdog_interval() is None
    asyncio.run(asyncio.wait_for(sdnotify.watchdog(), 5))  # returns at once
    asyncio.run(asyncio.wait_for(sdnotify.watchdog(INTERVAL), 5))
    assert drain(systemd) == []


def test_a_vanished_socket_is_not_an_error(systemd: socket.socket, tmp_path: Path):
    (tmp_path / "notify").unlink()
    assert sdnotify.notify("WATCHDOG=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("200000", None, 0.1),
        ("10000000", "self", 5.0),
        ("10000000", "1", None),  # the watchdog is another process's
        ("0", None, None),
        ("", None, None),
        ("ten", None, None),
    ],
)
def test_watchdog_interval(systemd, monkeypatch: pytest.MonkeyPatch, usec, pid, expected):
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid:
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
    assert sdnotify.watchdog_interval() == expected


async def test_watchdog_pings_at_half_the_timeout(
    systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    pings = asyncio.create_task(sdnotify.watchdog())
    try:
        times = []
        for _ in range(6):
            assert await receive(systemd) == "WATCHDOG=1"
            times.append(time.monotonic())
    finally:
        pings.cancel()
    # Never faster than the interval (with room for the receiver's own lateness); how much
    # slower a loaded machine makes it is bounded only by receive()'s timeout.
    assert times[-1] - times[0] >= 5 * INTERVAL * 0.5


async def test_a_blocked_event_loop_sends_no_ping(systemd: socket.socket):
    pings = asyncio.create_task(sdnotify.watchdog(INTERVAL))
    try:
        assert await receive(systemd) == "WATCHDOG=1"
        # From here until the next await the loop runs only this code: a ping sent meanwhile
        # could only come from outside the loop.
        drain(systemd)
        time.sleep(10 * INTERVAL)  # noqa: ASYNC251 - blocking the loop is what is tested
        assert drain(systemd) == []
        assert await receive(systemd) == "WATCHDOG=1"  # pings resume with the loop
    finally:
        pings.cancel()


async def test_watchdog_stops_when_cancelled(systemd: socket.socket):
    pings = asyncio.create_task(sdnotify.watchdog(INTERVAL))
    assert await receive(systemd) == "WATCHDOG=1"
    pings.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pings
    drain(systemd)
    await asyncio.sleep(3 * INTERVAL)
    assert drain(systemd) == []
