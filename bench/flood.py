"""Under a flood: how the admin UI, a dynamic route's call setup and a website visitor fare
while 2,000 idle connections from 40 client networks are held at the public tracking
listener, beside the same measurements without the flood, in the same run. The controller
runs with the descriptor limit systemd gives a unit by default (1,024), the tracking
listener with its unit's (16,384). Rounds take turns (quiet, flooded, quiet, ...) so that
drift on a shared machine falls on both sides.

- admin UI: GET /health with a token, each over a new TLS connection (milliseconds);
- dynamic route: post-dial delay, INVITE sent -> 180 Ringing, bursts of 10 (milliseconds);
- visitor: GET /t/v1/snippet.js from a network of its own, new TLS connection each.

    .venv/bin/python -m bench.flood
"""

from __future__ import annotations

import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.harness import report
from bench.post_dial_delay import burst
from tests.harness import SIPP_DIR, Stack, asterisk_root, wait_for
from tests.integration.test_flood import DYNAMIC, NETWORKS, PER_NETWORK, TARGET, Flood

ROUNDS = 6


def setup(stack: Stack) -> None:
    stack.appliance("init")
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    stack.appliance("route", "add", "Hook", "--forward", TARGET, "--trunk", "carrier",
                    "--dynamic")  # fmt: skip
    stack.appliance("number", "add", f"+{DYNAMIC}", "--route", "Hook")
    stack.appliance("config", "render")
    stack.extra_env.update(APPLIANCE_TRACKING_TIMEOUT="60", APPLIANCE_LOG_LEVEL="warning")
    stack.start_asterisk()
    stack.start_controller(nofile=1024)
    stack.start_tracking(nofile=16384)


def holding(stack: Stack) -> bool:
    open_now = stack.tracking_counters().get("tracking_connections_open", 0)
    return open_now >= NETWORKS * PER_NETWORK


def timed_get(url: str, context: ssl.SSLContext, headers: dict[str, str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            answer.read()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(data_dir=Path(tmp) / "data", root=asterisk_root())
        phone = None
        try:
            setup(stack)
            phone = subprocess.Popen(
                ["sipp", "-sf", str(SIPP_DIR / "phone_answer.xml"), "-i", "127.0.0.1",
                 "-p", str(stack.phone_port), "-nostdin"],
                cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            health = f"https://127.0.0.1:{stack.http_port}/health"
            token = {"Authorization": f"Bearer {stack.monitor_token}"}
            snippet = f"https://127.0.0.1:{stack.tracking_port}/t/v1/snippet.js"
            samples: dict[str, dict[str, list[float]]] = {
                side: {"admin UI /health": [], "dynamic route PDD": [], "visitor snippet": []}
                for side in ("quiet", "flooded")
            }
            burst(stack, DYNAMIC, 10)  # warm up
            for round_ in range(ROUNDS * 2):
                side = "flooded" if round_ % 2 else "quiet"
                flood = Flood(stack.tracking_port, NETWORKS, PER_NETWORK) if round_ % 2 else None
                if flood is not None:
                    wait_for(lambda: holding(stack), timeout=60, what="the flood held")
                try:
                    got = samples[side]
                    got["admin UI /health"] += timed_get(health, context, token, 20)
                    got["dynamic route PDD"] += burst(stack, DYNAMIC, 10)
                    got["visitor snippet"] += timed_get(snippet, context, {}, 20)
                finally:
                    if flood is not None:
                        flood.close()
                time.sleep(1)
            rows = [
                (name, samples["quiet"][name], samples["flooded"][name])
                for name in samples["quiet"]
            ]
            print(report(
                f"Under a flood of {NETWORKS * PER_NETWORK} idle connections at the tracking "
                "listener (ms)", "ms", rows, "quiet", "flooded",
            ))  # fmt: skip
            print(f"agi answered by the controller: {stack.counter('agi_answered')}")
        finally:
            if phone is not None:
                phone.kill()
                phone.wait()
            stack.close()


if __name__ == "__main__":
    main()
