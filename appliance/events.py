"""The event seam: features hook into what happens to calls, not into each other.

The call path emits CallStarted once a call's record is first written (it has its call id),
CallAnswered once its answer is written, CallFinished once its record is complete (a call
recorded only at its end, from the CDR, gets CallFinished alone), RecordingSealed once its
recording is safely sealed and RecordingFailed when a spool file is refused or cannot be
sealed; transcription, webhooks, plugins and the metrics subscribe. A subscriber that
fails is logged and never affects the call path or the other subscribers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallStarted:
    """A call's record was first written (its route chosen)."""

    call_id: str
    linkedid: str


@dataclass(frozen=True)
class CallAnswered:
    """A call's answer was written."""

    call_id: str
    linkedid: str


@dataclass(frozen=True)
class CallFinished:
    call_id: str
    linkedid: str
    disposition: str
    talk_seconds: float
    ring_seconds: float


@dataclass(frozen=True)
class RecordingSealed:
    call_id: str
    linkedid: str
    seconds: float
    latency: float = 0.0  # seconds from the recording's last write (the call's end) to sealed


@dataclass(frozen=True)
class RecordingFailed:
    """A spool file that was refused (`reason` "refused"), or that could not be sealed
    ("error": said once until it is sealed or gone)."""

    linkedid: str
    reason: str


Event = CallStarted | CallAnswered | CallFinished | RecordingSealed | RecordingFailed


class EventBus:
    def __init__(self) -> None:
        self.subscribers: dict[type, list[Callable[[Any], object]]] = defaultdict(list)

    def subscribe(self, kind: type, handler: Callable[[Any], object]) -> None:
        self.subscribers[kind].append(handler)

    def emit(self, event: Event) -> None:
        for handler in self.subscribers[type(event)]:
            try:
                handler(event)
            except Exception:
                log.exception("a subscriber to %s failed", type(event).__name__)
