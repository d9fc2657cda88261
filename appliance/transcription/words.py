"""What a transcript is made of: each word with its speaker, its time and the recogniser's
confidence (pure: no recogniser, no storage)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CALLER, ANSWERER = 0, 1
SPEAKERS = {CALLER: "caller", ANSWERER: "answering party"}


@dataclass(frozen=True)
class Word:
    speaker: int
    start: float  # seconds from the start of the recording
    end: float
    confidence: float
    text: str

    def as_row(self) -> list[Any]:
        return [self.speaker, self.start, self.end, self.confidence, self.text]

    @classmethod
    def from_row(cls, row: list[Any]) -> Word:
        speaker, start, end, confidence, text = row
        return cls(int(speaker), float(start), float(end), float(confidence), str(text))
