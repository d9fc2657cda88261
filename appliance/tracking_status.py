"""The public tracking listener's counters, in {data_dir}/tracking.json: written by its own
process (appliance track) every few seconds, read by the controller's /health and by
`appliance doctor`. The internet never sees them."""

from __future__ import annotations

import time
from pathlib import Path

from appliance import statusfile
from appliance.config import Config

FILE = "tracking.json"
STALE = 30.0  # seconds after which the counters are a stopped process's


def path(config: Config) -> Path:
    return config.data_dir / FILE


def write(config: Config, counters: dict[str, int], pid: int) -> None:
    statusfile.write(path(config), {"pid": pid, "at": time.time(), **counters})


def read_counters(config: Config, now: float | None = None) -> dict[str, int]:
    """The running listener's counters; nothing when it has not written them lately
    (stopped, or tracking turned off)."""
    data = statusfile.read(path(config)) or {}
    at = data.get("at")
    now = time.time() if now is None else now
    if not isinstance(at, (int, float)) or not 0 <= now - at <= STALE:
        return {}
    return {
        name: value
        for name, value in data.items()
        if name not in ("at", "pid") and type(value) is int  # never a bool
    }
