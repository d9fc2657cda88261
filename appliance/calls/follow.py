"""Following calls over AMI: every event goes through the pure tracker, and what it says
happened (a call started, a call ended) goes to the call writer."""

from __future__ import annotations

from collections.abc import Mapping

from appliance.calls.tracker import CallTracker, LiveCall
from appliance.calls.writer import CallWriter


class CallFollower:
    def __init__(self, writer: CallWriter) -> None:
        self.writer = writer
        self.tracker = CallTracker()

    def on_event(self, event: Mapping[str, str]) -> None:
        item = self.tracker.feed(event)
        if item is not None:
            self.writer.submit(item)

    def live(self, linkedid: str) -> LiveCall | None:
        return self.tracker.live(linkedid)

    def active_linkedids(self) -> set[str]:
        return set(self.tracker.calls)
