"""What a call was about, from its words and its facts, explainably (pure): tags from phrase
rules, a category, a lead score 0-100 with the trace of every signal that added or took
points, an extractive summary, the talk-time split, the longest silence, and a spam flag."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from appliance.transcription.dialogue import Turn, turns
from appliance.transcription.words import ANSWERER, CALLER, Word

SPEAKER_NAMES = {"any": None, "caller": CALLER, "answerer": ANSWERER}
SPAM = "spam"  # the category that flags a call as spam


@dataclass(frozen=True)
class Rule:
    """Say any of `phrases` (by `speaker`: any, caller or answerer) and the call gets `tag`,
    `points` on its lead score and, if given, `category`."""

    tag: str
    phrases: tuple[str, ...]
    speaker: str = "any"
    points: int = 0
    category: str | None = None


@dataclass(frozen=True)
class Weights:
    """Points of the signals that need no rule (configuration: analysis.*)."""

    answered: int = 20
    first_time: int = 15
    per_minute: int = 10  # of talk time
    talk_max: int = 30  # at most, from talk time
    spam: int = -100


@dataclass(frozen=True)
class Facts:
    """What the call record says, beside the words."""

    answered: bool
    talk_seconds: float | None
    first_time: bool | None
    seconds: float  # of recorded audio


@dataclass(frozen=True)
class Hit:
    tag: str
    phrase: str
    speaker: int
    at: float  # seconds into the recording


@dataclass(frozen=True)
class Signal:
    name: str
    points: int
    why: str


@dataclass(frozen=True)
class Analysis:
    tags: tuple[str, ...]
    hits: tuple[Hit, ...]
    category: str | None
    score: int
    trace: tuple[Signal, ...]
    summary: tuple[Turn, ...]
    caller_seconds: float
    answerer_seconds: float
    longest_silence: float
    spam: bool
    spam_reasons: tuple[str, ...] = field(default=())


def normalise(text: str) -> list[str]:
    """Lower case, no accents' variants, no punctuation: the tokens phrases are matched on."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.findall(r"\w+", text)


def _find(tokens: list[str], phrase: list[str]) -> int | None:
    """Index of the first token of `phrase` in `tokens`, or None."""
    if not phrase:
        return None
    for i in range(len(tokens) - len(phrase) + 1):
        if tokens[i : i + len(phrase)] == phrase:
            return i
    return None


def hits(words: Sequence[Word], rules: Sequence[Rule]) -> list[Hit]:
    """The first place each rule's phrases were said, by the speaker it asks for."""
    streams: dict[int, tuple[list[str], list[float]]] = {}
    for speaker in (CALLER, ANSWERER):
        tokens: list[str] = []
        times: list[float] = []
        for word in words:
            if word.speaker == speaker:
                for token in normalise(word.text):
                    tokens.append(token)
                    times.append(word.start)
        streams[speaker] = (tokens, times)
    found = []
    for rule in rules:
        wanted = SPEAKER_NAMES[rule.speaker]
        best: Hit | None = None
        for phrase in rule.phrases:
            for speaker, (tokens, times) in streams.items():
                if wanted is not None and speaker != wanted:
                    continue
                at = _find(tokens, normalise(phrase))
                if at is not None and (best is None or times[at] < best.at):
                    best = Hit(rule.tag, phrase, speaker, times[at])
        if best is not None:
            found.append(best)
    return sorted(found, key=lambda h: h.at)


def _spoken(words: Sequence[Word], speaker: int | None = None) -> list[tuple[float, float]]:
    """The union of the word intervals (of one speaker, or of both)."""
    spans = sorted((w.start, w.end) for w in words if speaker is None or w.speaker == speaker)
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _seconds(spans: list[tuple[float, float]]) -> float:
    return round(sum(end - start for start, end in spans), 2)


def longest_silence(words: Sequence[Word], seconds: float) -> float:
    """The longest stretch of the recording in which nobody said a word."""
    edge = 0.0
    longest = 0.0
    for start, end in _spoken(words):
        longest = max(longest, start - edge)
        edge = max(edge, end)
    return round(max(longest, seconds - edge), 2)


SILENT_CALLER = 10.0  # seconds of an answered call in which the caller never spoke
MONOLOGUE = 20.0  # seconds of one caller turn while the answering party said nothing


def spam_reasons(words: Sequence[Word], facts: Facts, found: Sequence[Hit],
                 rules: Sequence[Rule]) -> list[str]:  # fmt: skip
    reasons = []
    caller = [w for w in words if w.speaker == CALLER]
    if facts.answered and facts.seconds >= SILENT_CALLER and not caller:
        reasons.append(f"the caller said nothing in {facts.seconds:.0f} s")
    for turn in turns(words):
        if (
            turn.speaker == CALLER
            and turn.end - turn.start >= MONOLOGUE
            and not any(w.speaker == ANSWERER and turn.start <= w.start <= turn.end for w in words)
        ):
            reasons.append(
                f"the caller spoke {turn.end - turn.start:.0f} s without a pause for an "
                "answer (a recorded message?)"
            )
            break
    spam_tags = {r.tag for r in rules if r.category == SPAM}
    for hit in found:
        if hit.tag in spam_tags:
            reasons.append(f'"{hit.phrase}" was said ({hit.tag})')
    return reasons


def summary(words: Sequence[Word], found: Sequence[Hit], count: int = 3) -> tuple[Turn, ...]:
    """The turns that say most: those with a rule's phrase first, then the longest, in time
    order."""
    dialogue = turns(words)
    marked = {id(t) for t in dialogue for h in found if t.start <= h.at <= t.end}
    ranked = sorted(dialogue, key=lambda t: (id(t) not in marked, -len(t.words), t.start))
    return tuple(sorted(ranked[:count], key=lambda t: t.start))


def analyse(
    words: Sequence[Word], facts: Facts, rules: Sequence[Rule], weights: Weights = Weights()
) -> Analysis:
    found = hits(words, rules)
    by_tag = {r.tag: r for r in rules}
    trace: list[Signal] = []
    if facts.answered:
        trace.append(Signal("answered", weights.answered, "the call was answered"))
    if facts.first_time:
        trace.append(Signal("first_time", weights.first_time, "first call from this number"))
    talk = facts.talk_seconds or 0.0
    if talk > 0 and weights.per_minute:
        points = min(round(talk / 60 * weights.per_minute), weights.talk_max)
        if points:
            trace.append(Signal("talk_time", points, f"{talk:.0f} s of talk"))
    for hit in found:
        rule = by_tag[hit.tag]
        if rule.points:
            who = "the caller" if hit.speaker == CALLER else "the answering party"
            trace.append(
                Signal(
                    f"tag:{hit.tag}", rule.points, f'{who} said "{hit.phrase}" at {hit.at:.1f} s'
                )
            )
    reasons = spam_reasons(words, facts, found, rules)
    if reasons:
        trace.append(Signal("spam", weights.spam, "; ".join(reasons)))
    categories = [by_tag[h.tag].category for h in found if by_tag[h.tag].category]
    category = SPAM if reasons else (categories[0] if categories else None)
    return Analysis(
        tags=tuple(dict.fromkeys(h.tag for h in found)),
        hits=tuple(found),
        category=category,
        score=max(0, min(100, sum(s.points for s in trace))),
        trace=tuple(trace),
        summary=summary(words, found),
        caller_seconds=_seconds(_spoken(words, CALLER)),
        answerer_seconds=_seconds(_spoken(words, ANSWERER)),
        longest_silence=longest_silence(words, facts.seconds),
        spam=bool(reasons),
        spam_reasons=tuple(reasons),
    )
