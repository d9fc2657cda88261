"""The controller speaks systemd's notify protocol: ready once it serves, watchdog pings from
its event loop while it runs, stopping when told to stop (appliance/sdnotify.py)."""

from __future__ import annotations

import socket

from tests.harness import Stack, wait_for


def test_ready_watchdog_and_stopping_reach_systemd(stack: Stack, tmp_path):
    path = tmp_path / "notify"
    received: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.setblocking(False)

        def drain() -> list[str]:
            while True:
                try:
                    received.append(systemd.recv(4096).decode())
                except BlockingIOError:
                    return received

        stack.extra_env.update({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
        stack.appliance("config", "render")
        controller = stack.start_controller(wait_ami=False)
        wait_for(lambda: "READY=1" in drain(), what="READY=1")
        wait_for(lambda: drain().count("WATCHDOG=1") >= 3, what="three watchdog pings")
        assert stack.stop(controller) == 0
        wait_for(lambda: "STOPPING=1" in drain(), what="STOPPING=1")
        assert received.index("READY=1") < received.index("STOPPING=1")
