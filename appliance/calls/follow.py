"""Following calls over AMI: every event goes through the pure tracker, and what it says
happened (a call started, a call ended) goes to the call writer."""

from __future__ import annotations

import time
from collections.abc import Mapping

from appliance.calls.tracker import CallTracker, InProgress, LiveCall
from appliance.calls.writer import CallWriter


class CallFollower:
    QUIET = 0.3  # seconds without call events after which calls are not being set up

    def __init__(self, writer: CallWriter, only_ours: bool = False) -> None:
        self.writer = writer
        self.tracker = CallTracker(only_ours)
        self.last_event = 0.0

    def quiet_in(self) -> float:
        """Seconds until call setup pauses (no call event for QUIET seconds); 0 once it has.
        Calls being set up have their events still coming in."""
        return max(0.0, self.last_event + self.QUIET - time.monotonic())

    def on_event(self, event: Mapping[str, str]) -> None:
        self.last_event = time.monotonic()
        item = self.tracker.feed(event)
        if item is not None:
            self.writer.submit(item)

    def live(self, linkedid: str) -> LiveCall | None:
        return self.tracker.live(linkedid)

    def started(self, linkedid: str) -> float | None:
        return self.tracker.started(linkedid)

    def adopt(self, linkedid: str, number_id: int | None, dialled: str) -> None:
        self.tracker.adopt(linkedid, number_id, dialled)

    def in_progress(self) -> list[InProgress]:
        return self.tracker.in_progress()
