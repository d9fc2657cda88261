"""What a finished call looked like, and how its disposition is decided (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DISPOSITIONS = ("answered", "no_answer", "busy", "failed", "abandoned")


@dataclass(frozen=True)
class CallOutcome:
    linkedid: str
    dialled: str
    caller_number: str
    caller_name: str
    started: float  # epoch seconds
    ended: float
    answered: float | None
    ring_started: float | None
    disposition: str
    hangup_cause: int | None = None
    hangup_party: str | None = None  # 'caller', 'callee' or 'system'
    answered_by: str | None = None  # the dial string of the destination that answered
    consent_announced: bool = False
    recording_opted_out: bool = False
    consent_prompt: str | None = None  # the notice played (a sound name), when one was
    consent_at: float | None = None  # when the caller heard it (epoch seconds)
    number_id: int | None = None  # the tracking number, when the dialplan said
    route_id: int | None = None  # the route the call connected to, when the dialplan said
    after_hours: bool = False
    reconciled: bool = False  # learnt from Asterisk's CDRs rather than followed live

    @property
    def ring_seconds(self) -> float:
        if self.ring_started is None:
            return 0.0
        return max(0.0, (self.answered or self.ended) - self.ring_started)

    @property
    def talk_seconds(self) -> float:
        return max(0.0, self.ended - self.answered) if self.answered is not None else 0.0


def disposition(answered: bool, dial_statuses: Iterable[str], caller_gave_up: bool) -> str:
    """answered > abandoned (caller hung up first) > the last dial attempt's status > failed."""
    if answered:
        return "answered"
    statuses = [s.upper() for s in dial_statuses]
    if caller_gave_up or (statuses and statuses[-1] == "CANCEL"):
        return "abandoned"
    last = statuses[-1] if statuses else ""
    if last == "BUSY":
        return "busy"
    if last == "NOANSWER":
        return "no_answer"
    return "failed"
