"""Raising the alarm when something stays down: a pure watcher fed what is up and when, and the
task that feeds it. An alarm is an `ALERT ...` log line, which mail.AlertMail sends on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Outage:
    """Says once when `what` has been down for `grace` seconds, and once when it is back."""

    what: str
    grace: float = 60.0
    down_since: float | None = None
    alarmed: bool = False

    def feed(self, up: bool, now: float) -> str | None:
        if up:
            back = self.alarmed
            self.down_since, self.alarmed = None, False
            return f"{self.what} is back" if back else None
        if self.down_since is None:
            self.down_since = now
        if not self.alarmed and now - self.down_since >= self.grace:
            self.alarmed = True
            return f"ALERT {self.what} has been down for {now - self.down_since:.0f} s"
        return None


async def watch(outage: Outage, up: Callable[[], bool], every: float = 10.0) -> None:
    while True:
        said = outage.feed(up(), time.monotonic())
        if said is not None:
            (log.error if said.startswith("ALERT") else log.warning)("%s", said)
        await asyncio.sleep(every)
