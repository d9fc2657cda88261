"""Redaction before a transcript is stored (pure): card numbers with the Luhn check and
9-digit numbers, said as digits, digit words or a mix, and an admin's own patterns."""

from __future__ import annotations

import array
import re

import pytest

from appliance.config import ConfigError, load, redaction_patterns
from appliance.transcription.redact import CARD, PATTERN, SSN, luhn, redact
from appliance.transcription.words import Word
from tests.hostile import STRINGS


def said(speaker: int, start: float, sentence: str, step: float = 0.4) -> list[Word]:
    return [
        Word(speaker, round(start + i * step, 2), round(start + i * step + 0.3, 2), 0.9, w)
        for i, w in enumerate(sentence.split())
    ]


def texts(words: list[Word]) -> str:
    return " ".join(w.text for w in words)


def test_luhn():
    assert luhn("4111111111111111") and luhn("79927398713")
    assert not luhn("4111111111111112")


@pytest.mark.parametrize(
    "spoken",
    [
        "my card is 4111 1111 1111 1111 thanks",
        "my card is four one one one one one one one one one one one one one one one thanks",
        "my card is 4111 one one one one 1111 1111 thanks",
        "my card is 4111-1111-1111-1111 thanks",
        "my card is 4111111111111111 thanks",
    ],
)
def test_a_card_number_is_masked_however_it_is_said(spoken):
    words = said(0, 0.0, spoken)
    out, spans = redact(words)
    assert texts(out).startswith("my card is [card]") and texts(out).endswith("thanks")
    assert "1111" not in texts(out) and "one" not in texts(out)
    (span,) = spans
    assert (span.label, span.speaker, span.start) == (CARD, 0, words[3].start)
    assert [w.start for w in out] == [w.start for w in words]  # every word keeps its time


def test_phone_numbers_and_short_numbers_stay():
    for kept in (
        "call me on 202 555 0123 please",  # a phone number: 10 digits
        "call me on two zero two five five five zero one two three",
        "it is 12 dollars for 3 items",
        "room four two",
    ):
        out, spans = redact(said(0, 0.0, kept))
        assert texts(out) == kept and spans == [], kept


@pytest.mark.parametrize(
    ("spoken", "kept"),
    [
        # two cards back to back: both go
        ("4111 1111 1111 1111 5500 0000 0000 0004 ok", "[card] [card] [card] [card] [card] "
         "[card] [card] [card] ok"),
        # a card, its security code, then a social security number in 3-2-4 groups
        ("4111 1111 1111 1111 123 078 05 1120 ok", "[card] [card] [card] [card] [card] [ssn] "
         "[ssn] [ssn] ok"),
        # a card with a misheard digit fails the check: masked all the same
        ("4111 1111 1111 1112 ok", "[number] [number] [number] [number] ok"),
        # a social security number in 3-2-4 groups beside other numbers
        ("ref 12 then 123 45 6789 ok", "ref 12 then [ssn] [ssn] [ssn] ok"),
        ("12 123 45 6789 ok", "12 [ssn] [ssn] [ssn] ok"),
        # 13 digits or more that pass no check: masked (maybe a card, misheard)
        ("123 45 6789 90210 ok", "[number] [number] [number] [number] ok"),
    ],
)  # fmt: skip
def test_everything_in_a_long_run_of_numbers_is_found(spoken, kept):
    out, _ = redact(said(0, 0.0, spoken))
    assert texts(out) == kept


def test_a_nine_digit_number_is_masked_as_a_social_security_number():
    out, spans = redact(said(1, 0.0, "it is 078 05 1120 ok"))
    assert texts(out) == "it is [ssn] [ssn] [ssn] ok" and spans[0].label == SSN


def test_a_long_pause_or_the_other_speaker_splits_a_number():
    first = said(0, 0.0, "4111 1111")
    later = said(0, 10.0, "1111 1111")  # 10 s later: another number
    other = said(1, 1.0, "1111 1111")
    out, spans = redact(first + later + other)
    assert spans == [] and CARD not in texts(out)


def test_patterns_mask_the_words_they_match_per_speaker():
    words = said(0, 0.0, "my member id is AB 12 34 thanks") + said(1, 1.0, "AB is fine")
    pattern = re.compile(r"\bab \d+ \d+\b", re.IGNORECASE)
    out, spans = redact(words, [pattern])
    assert texts(out) == "my member id is [redacted] [redacted] [redacted] thanks AB is fine"
    assert [s.label for s in spans] == [PATTERN]
    assert texts([w for w in out if w.speaker == 1]) == "AB is fine"


def test_numbers_off_keeps_digits_but_patterns_still_apply():
    out, _ = redact(said(0, 0.0, "4111 1111 1111 1111"), numbers=False)
    assert CARD not in texts(out)


def test_patterns_come_from_the_configuration_and_bad_ones_are_refused():
    config = load(environ={"APPLIANCE_TRANSCRIPTION_REDACT_PATTERNS": "member \\d+\n\npin \\w+"})
    assert [p.pattern for p in redaction_patterns(config)] == ["member \\d+", "pin \\w+"]
    with pytest.raises(ConfigError, match="is not a regular expression"):
        load(environ={"APPLIANCE_TRANSCRIPTION_REDACT_PATTERNS": "member ("})


@pytest.mark.parametrize("text", STRINGS)
def test_hostile_words_never_break_redaction(text):
    words = [Word(0, 0.0, 0.5, 0.9, text), *said(0, 1.0, "4111 1111 1111 1111")]
    out, _ = redact(words, [re.compile(r"\d{3}")])
    assert len(out) == len(words)


def test_the_tone_covers_both_channels_of_each_span_and_nothing_else():
    from appliance.transcription.redact import MARGIN, Span, tone_over

    rate = 8000
    frames = 3 * rate  # three seconds of stereo, every sample 100
    audio = (array.array("h", [100]) * (2 * frames)).tobytes()
    change = tone_over([Span(CARD, 0, 1.0, 1.5)], rate)
    chunk = 4 * 5000  # frames, in chunks that do not line up with the span
    out = b"".join(change(at, audio[at : at + chunk]) for at in range(0, len(audio), chunk))
    assert len(out) == len(audio)
    samples = array.array("h", out)
    lo, hi = int((1.0 - MARGIN) * rate), int((1.5 + MARGIN) * rate)
    assert set(samples[: 2 * lo]) == {100} and set(samples[2 * (hi + 1) :]) == {100}
    toned = samples[2 * lo : 2 * hi]
    assert toned[0::2] == toned[1::2]  # both channels
    assert max(toned) > 3000 and min(toned) < -3000  # a tone, not the speech
