"""A flood of idle connections at the public tracking listener costs the calls and the admin UI
nothing: 2,000 connections held open from 40 client networks, with the controller at the
descriptor limit systemd gives a unit by default (1,024), where the same flood at a
listener inside the controller left the admin UI dead and dynamic-route callers in dead air.
"""

from __future__ import annotations

import socket

import pytest

from tests.harness import Stack, invited, sipp_call, wait_for

HANG = 30.0  # seconds: a bound that catches a hang, never a timing to meet
NETWORKS, PER_NETWORK = 40, 50  # 2,000 connections, each network under its cap (64)
DYNAMIC = "12025550124"
TARGET = "+12025550199"


class Flood:
    """Idle TCP connections to `port`, `per_network` from each of `networks` /24s of
    127/8, held (never a byte sent) until close()."""

    def __init__(self, port: int, networks: int, per_network: int) -> None:
        self.sockets: list[socket.socket] = []
        self.failed = 0
        sources = [f"127.0.{n}.{h}" for n in range(10, 10 + networks) for h in range(1, 3)]
        for index in range(networks * per_network):
            source = sources[(index % networks) * 2 + index // networks % 2]
            try:
                self.sockets.append(
                    socket.create_connection(("127.0.0.1", port), 5, source_address=(source, 0))
                )
            except OSError:
                self.failed += 1

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def flooded(stack: Stack):
    """Asterisk, a dynamic route over the carrier trunk, the controller at 1,024 descriptors
    and the tracking listener (with the longest timeout: the flood stays for the test)."""
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    stack.appliance("route", "add", "Hook", "--forward", TARGET, "--trunk", "carrier",
                    "--dynamic")  # fmt: skip
    stack.appliance("number", "add", f"+{DYNAMIC}", "--route", "Hook")
    stack.appliance("config", "render")
    stack.extra_env["APPLIANCE_TRACKING_TIMEOUT"] = "60"
    stack.start_asterisk()
    stack.start_controller(nofile=1024)
    stack.start_tracking(nofile=4096)
    return stack


def test_the_admin_ui_and_a_dynamic_route_call_work_through_a_flood(flooded: Stack, phone):
    flood = Flood(flooded.tracking_port, NETWORKS, PER_NETWORK)
    try:
        wait_for(
            lambda: (
                flooded.tracking_counters().get("tracking_connections_open", 0)
                >= NETWORKS * PER_NETWORK
            ),
            timeout=HANG,
            what="the tracking listener holding the whole flood",
        )
        # admins at work: a few connections of their own held open, and /health still answers
        # (at the default descriptor limit the admin UI keeps all of http.max_connections)
        admins = Flood(flooded.http_port, 1, 8)
        try:
            assert len(admins.sockets) == 8
            assert wait_for(flooded.health, timeout=HANG, what="the admin UI's /health")
        finally:
            admins.close()
        carrier = phone()
        result = sipp_call(flooded, DYNAMIC, "13125550111", "Jane", talk_ms=300)
        assert result.returncode == 0, result.output
        assert invited(carrier.trace) == [TARGET]
        assert flooded.counter("agi_answered") == 1  # the controller itself answered it
        (call,) = flooded.finished()
        assert call["route_name"] == "Hook"
        # still holding the flood: nothing above was a lull
        assert flooded.tracking_counters()["tracking_connections_open"] >= len(flood.sockets)
    finally:
        flood.close()
