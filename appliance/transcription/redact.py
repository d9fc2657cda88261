"""Redaction of what must not be kept, before a transcript is stored (pure): card numbers
(13 to 19 digits that pass the Luhn check) with the security code said after them, any other
number of 13 digits or more (a card with a misheard digit), social-security-style numbers
(9 digits, or 3-2-4 groups), said as digits or as spoken digit words ("four one one one ...",
in any mix), and an admin's own patterns. A redacted word keeps its place and time; its text
becomes the label."""

from __future__ import annotations

import array
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from appliance.transcription.words import Word

CARD, NUMBER, SSN, PATTERN = "[card]", "[number]", "[ssn]", "[redacted]"
LABELS = frozenset({CARD, NUMBER, SSN, PATTERN})
SPOKEN = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
PAUSE = 2.0  # seconds between two digits that still belong to one number


@dataclass(frozen=True)
class Span:
    label: str
    speaker: int
    start: float
    end: float


def digits(text: str) -> str | None:
    """The digits a word says, or None when it is not a number ("4111", "4111-1111", "four")."""
    word = text.casefold().strip(".,;:!?")
    if word in SPOKEN:
        return SPOKEN[word]
    plain = word.replace("-", "").replace(" ", "")
    return plain if plain.isascii() and plain.isdigit() else None


def luhn(number: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(number)):
        n = int(d)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _runs(words: Sequence[Word]) -> list[list[int]]:
    """Indexes of consecutive number words of one speaker, no long pause between them."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(words)), key=lambda i: (words[i].speaker, words[i].start)):
        word = words[i]
        last = words[current[-1]] if current else None
        if digits(word.text) is None or (
            last is not None and (last.speaker != word.speaker or word.start - last.end > PAUSE)
        ):
            if current:
                runs.append(current)
                current = []
            if digits(word.text) is None:
                continue
        current.append(i)
    if current:
        runs.append(current)
    return runs


def _card(parts: list[str], edges: list[int], start: int) -> tuple[int, int] | None:
    """The first card number (13 to 19 digits, Luhn) from word `start` on that starts and ends
    with a word, the longest there."""
    text = "".join(parts)
    for first in range(start, len(parts)):
        for last in range(len(parts) - 1, first - 1, -1):
            size = edges[last + 1] - edges[first]
            if 13 <= size <= 19 and luhn(text[edges[first] : edges[last + 1]]):
                return first, last
    return None


def _labels(parts: list[str]) -> list[tuple[str, int, int]]:
    """What a run of numbers holds, as (label, first word, last word): every card number and
    the 3 or 4 digits said right after one (its security code); then, in what is left, any
    13 digits or more (a card misheard by a digit), 9 digits in all, or 3-2-4 digit groups."""
    edges = _edges(parts)
    found = _cards(parts, edges)
    taken = {i for _, first, last in found for i in range(first, last + 1)}
    for segment in _segments(len(parts), taken):
        other = _other_number(parts, edges, segment)
        if other is not None:
            found.append(other)
    return found


def _edges(parts: list[str]) -> list[int]:
    """Where each word's digits start and end in the run's digits put together."""
    edges = [0]
    for part in parts:
        edges.append(edges[-1] + len(part))
    return edges


def _cards(parts: list[str], edges: list[int]) -> list[tuple[str, int, int]]:
    """Every card number, each with the security code said right after it, if one was."""
    found: list[tuple[str, int, int]] = []
    start = 0
    while (card := _card(parts, edges, start)) is not None:
        first, last = card
        found.append((CARD, first, last))
        start = last + 1
        following = _card(parts, edges, start)
        if following is not None and following[0] == start:
            continue  # another card right after it
        code = _security_code(edges, start, len(parts))
        if code is not None:
            found.append((CARD, start, code))
            start = code + 1
    return found


def _security_code(edges: list[int], start: int, count: int) -> int | None:
    """The last word of the 3 or 4 digits said from word `start` on, if they were."""
    code = start
    while code < count and edges[code + 1] - edges[start] <= 4:
        code += 1
    if code > start and edges[code] - edges[start] >= 3:
        return code - 1
    return None


def _segments(count: int, taken: set[int]) -> list[list[int]]:
    """The stretches of consecutive words (of `count`) that are not in `taken`."""
    rest: list[list[int]] = []
    for i in range(count):
        if i in taken:
            continue
        if rest and rest[-1][-1] == i - 1:
            rest[-1].append(i)
        else:
            rest.append([i])
    return rest


def _other_number(
    parts: list[str], edges: list[int], segment: list[int]
) -> tuple[str, int, int] | None:
    """In a stretch left once the cards are out: 13 digits or more (a card misheard by a
    digit), 9 digits in all, or the first 3-2-4 digit groups."""
    size = edges[segment[-1] + 1] - edges[segment[0]]
    if size >= 13:
        return NUMBER, segment[0], segment[-1]
    if size == 9:
        return SSN, segment[0], segment[-1]
    for at in range(len(segment) - 2):
        if [len(parts[i]) for i in segment[at : at + 3]] == [3, 2, 4]:
            return SSN, segment[at], segment[at + 2]
    return None


def redact(
    words: Sequence[Word], patterns: Sequence[re.Pattern[str]] = (), numbers: bool = True
) -> tuple[list[Word], list[Span]]:
    """The words with what must not be kept replaced by its label, and where it was said."""
    out = list(words)
    spans: list[Span] = []
    for run in _runs(words) if numbers else []:
        for label, first, last in _labels([digits(words[i].text) or "" for i in run]):
            chosen = run[first : last + 1]
            for i in chosen:
                out[i] = replace(out[i], text=label)
            spans.append(Span(label, words[chosen[0]].speaker, words[chosen[0]].start,
                              words[chosen[-1]].end))  # fmt: skip
    for pattern in patterns:
        spans += _patterns(out, pattern)
    return out, sorted(spans, key=lambda s: s.start)


def _patterns(out: list[Word], pattern: re.Pattern[str]) -> list[Span]:
    """Redact the words a pattern matches in each speaker's words joined by spaces."""
    spans = []
    for speaker in {w.speaker for w in out}:
        mine = [i for i in range(len(out)) if out[i].speaker == speaker]
        text, starts = "", []
        for i in mine:
            starts.append(len(text))
            text += out[i].text + " "
        for match in pattern.finditer(text):
            if match.end() == match.start():
                continue
            hit = [
                i for i, at in zip(mine, starts, strict=True)
                if at < match.end() and at + len(out[i].text) > match.start()
            ]  # fmt: skip
            if not hit:
                continue
            for i in hit:
                out[i] = replace(out[i], text=PATTERN)
            spans.append(Span(PATTERN, speaker, out[hit[0]].start, out[hit[-1]].end))
    return spans


TONE_HZ, TONE_LEVEL = 1000, 4000  # a beep, well below full scale
MARGIN = 0.15  # seconds of tone before and after each span


def tone_over(
    spans: Sequence[Span], rate: int = 8000, channels: int = 2
) -> Callable[[int, bytes], bytes]:
    """A change for RecordingVault.reseal: both channels of 16-bit little-endian PCM become a
    tone wherever a span was said (a little before and after it too)."""
    frames = sorted(
        (max(0, int((s.start - MARGIN) * rate)), int((s.end + MARGIN) * rate) + 1) for s in spans
    )
    frame_bytes = 2 * channels

    def change(offset: int, chunk: bytes) -> bytes:
        first = offset // frame_bytes
        count = len(chunk) // frame_bytes
        hit = [(max(lo, first), min(hi, first + count)) for lo, hi in frames]
        hit = [(lo, hi) for lo, hi in hit if lo < hi]
        if not hit or offset % frame_bytes:
            return chunk
        samples = array.array("h", chunk[: count * frame_bytes])
        if sys.byteorder == "big":
            samples.byteswap()
        for lo, hi in hit:
            for frame in range(lo, hi):
                value = int(TONE_LEVEL * math.sin(2 * math.pi * TONE_HZ * frame / rate))
                at = (frame - first) * channels
                samples[at : at + channels] = array.array("h", [value] * channels)
        if sys.byteorder == "big":
            samples.byteswap()
        return samples.tobytes() + chunk[count * frame_bytes :]

    return change
