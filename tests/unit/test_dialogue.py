"""Words of two speakers into the turns of a dialogue, and stereo frames into channels."""

from __future__ import annotations

import array

from appliance.transcription.decode import split
from appliance.transcription.dialogue import turns
from appliance.transcription.words import Word


def w(speaker: int, start: float, end: float, text: str) -> Word:
    return Word(speaker, start, end, 1.0, text)


def test_turns_change_with_the_speaker_and_follow_time_not_input_order():
    words = [
        w(1, 1.2, 1.5, "clinic"),
        w(0, 0.0, 0.4, "hello"),
        w(0, 0.5, 0.9, "booking"),
        w(0, 1.6, 2.0, "tuesday"),
    ]
    found = turns(words)
    assert [(t.speaker, t.text, t.start, t.end) for t in found] == [
        (0, "hello booking", 0.0, 0.9),
        (1, "clinic", 1.2, 1.5),
        (0, "tuesday", 1.6, 2.0),
    ]


def test_a_long_pause_ends_a_turn_even_for_the_same_speaker():
    found = turns([w(0, 0.0, 0.5, "yes"), w(0, 3.0, 3.5, "hello?"), w(0, 4.0, 4.2, "anyone")])
    assert [t.text for t in found] == ["yes", "hello? anyone"]


def test_no_words_no_turns():
    assert turns([]) == []


def test_a_word_row_round_trips():
    word = Word(1, 2.5, 2.75, 0.875, "<b>네</b>")
    assert Word.from_row(word.as_row()) == word


def test_stereo_frames_split_into_left_and_right_as_they_are():
    left = array.array("h", [1, -2, 300, -32768])
    right = array.array("h", [5, 6, -7, 32767])
    both = array.array("h", [x for pair in zip(left, right, strict=True) for x in pair])
    assert split(both.tobytes()) == (left.tobytes(), right.tobytes())
