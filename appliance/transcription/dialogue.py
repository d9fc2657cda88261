"""Words of two speakers into the turns of a dialogue (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.transcription.words import Word

PAUSE = 2.0  # seconds of silence that end a turn even when the same speaker goes on


@dataclass(frozen=True)
class Turn:
    speaker: int
    start: float
    end: float
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def turns(words: Sequence[Word], pause: float = PAUSE) -> list[Turn]:
    """Consecutive words of one speaker, in time order, form a turn; a change of speaker or a
    pause longer than `pause` starts the next."""
    found: list[Turn] = []
    current: list[Word] = []
    for word in sorted(words, key=lambda w: (w.start, w.speaker)):
        if current and (
            word.speaker != current[-1].speaker or word.start - current[-1].end > pause
        ):
            found.append(_turn(current))
            current = []
        current.append(word)
    if current:
        found.append(_turn(current))
    return found


def _turn(words: list[Word]) -> Turn:
    return Turn(words[0].speaker, words[0].start, max(w.end for w in words), tuple(words))
