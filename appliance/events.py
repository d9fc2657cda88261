"""The event seam: features hook into what happens to calls, not into each other.

The call path emits CallFinished once a call's record is complete and RecordingSealed once its
recording is safely sealed; transcription, webhooks and plugins subscribe. A subscriber that
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


Event = CallFinished | RecordingSealed


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
