"""Call analysis from words and facts (pure): tags from phrase rules by speaker, the lead score
and its trace, spam signs, the talk split, the longest silence and the summary."""

from __future__ import annotations

import pytest

from appliance.transcription.analysis import Facts, Rule, Weights, analyse, hits, longest_silence
from appliance.transcription.words import Word
from tests.hostile import STRINGS


def said(speaker: int, start: float, text: str, step: float = 0.4) -> list[Word]:
    return [
        Word(speaker, round(start + i * step, 2), round(start + i * step + 0.3, 2), 0.9, token)
        for i, token in enumerate(text.split())
    ]


CALL = (
    said(0, 0.0, "Hi I would like to book an appointment")
    + said(1, 4.0, "Sure what day works")
    + said(0, 6.0, "How much is a cleaning")
    + said(1, 9.0, "The price is eighty dollars")
)
RULES = [
    Rule("appointment", ("book an appointment", "schedule"), "caller", 25, "sales"),
    Rule("price", ("how much", "price"), "any", 10),
    Rule("complaint", ("refund", "manager"), "caller", -20, "support"),
]
ANSWERED = Facts(answered=True, talk_seconds=90.0, first_time=True, seconds=12.0)


def test_tags_come_from_phrases_said_by_the_speaker_each_rule_asks_for():
    found = hits(CALL, RULES)
    assert [(h.tag, h.phrase, h.speaker) for h in found] == [
        ("appointment", "book an appointment", 0),
        ("price", "how much", 0),  # the caller said it first; the answerer's "price" is later
    ]
    assert found[0].at == pytest.approx(2.0)  # "book" is the sixth word, 0.4 s apart
    only_answerer = [Rule("appointment", ("book an appointment",), "answerer", 25)]
    assert hits(CALL, only_answerer) == []


def test_phrases_match_whole_words_whatever_the_case_and_punctuation():
    words = said(0, 0.0, "BOOK, an Appointment! please") + said(0, 3.0, "bookkeeping")
    assert [h.tag for h in hits(words, [Rule("a", ("book an appointment",))])] == ["a"]
    assert hits(words, [Rule("b", ("book keeping",)), Rule("c", ("keep",))]) == []


def test_the_lead_score_is_the_sum_of_its_traced_signals_within_0_and_100():
    result = analyse(CALL, ANSWERED, RULES)
    trace = {s.name: s.points for s in result.trace}
    assert trace == {
        "answered": 20,
        "first_time": 15,
        "talk_time": 15,  # 90 s at 10 a minute
        "tag:appointment": 25,
        "tag:price": 10,
    }
    assert result.score == 85 and result.tags == ("appointment", "price")
    assert result.category == "sales" and not result.spam
    assert 'the caller said "book an appointment" at 2.0 s' in {s.why for s in result.trace}
    generous = Weights(answered=100, first_time=100)
    assert analyse(CALL, ANSWERED, RULES, generous).score == 100
    unhappy = analyse(said(0, 0.0, "I want a refund"), ANSWERED, RULES, Weights(0, 0, 0, 0, 0))
    assert unhappy.score == 0 and unhappy.category == "support"


def test_talk_time_points_stop_at_their_maximum():
    long_call = Facts(answered=True, talk_seconds=3600.0, first_time=False, seconds=12.0)
    trace = {s.name: s.points for s in analyse(CALL, long_call, []).trace}
    assert trace == {"answered": 20, "talk_time": 30}


def test_a_silent_caller_a_monologue_or_a_spam_phrase_flag_spam_and_why():
    silent = analyse(said(1, 0.0, "hello hello anyone there"), Facts(True, 30.0, True, 30.0), [])
    assert silent.spam and silent.category == "spam" and silent.score == 0
    assert silent.spam_reasons == ("the caller said nothing in 30 s",)

    message = said(0, 0.0, " ".join(["word"] * 60))  # 24 s of one caller turn, no answer
    robot = analyse(message, Facts(True, 30.0, False, 30.0), [])
    assert robot.spam and "without a pause for an answer" in robot.spam_reasons[0]

    warranty = [Rule("robocall", ("extended warranty",), "caller", 0, "spam")]
    words = said(0, 0.0, "about your car's extended warranty") + said(1, 3.0, "no thanks")
    flagged = analyse(words, ANSWERED, warranty)
    assert flagged.spam and flagged.spam_reasons == ('"extended warranty" was said (robocall)',)

    assert not analyse(CALL, ANSWERED, RULES).spam


def test_talk_split_and_longest_silence():
    result = analyse(CALL, ANSWERED, RULES)
    assert result.caller_seconds == pytest.approx(13 * 0.3, abs=0.01)
    assert result.answerer_seconds == pytest.approx(9 * 0.3, abs=0.01)
    words = said(0, 1.0, "a b") + said(1, 7.0, "c")
    assert longest_silence(words, 8.0) == pytest.approx(7.0 - 1.7)
    assert longest_silence([], 8.0) == 8.0
    assert longest_silence(said(0, 0.0, "a"), 20.0) == pytest.approx(19.7)


def test_the_summary_prefers_turns_with_tagged_phrases_in_time_order():
    result = analyse(CALL, ANSWERED, RULES)
    assert [t.start for t in result.summary] == sorted(t.start for t in result.summary)
    assert len(result.summary) == 3
    assert result.summary[0].text == "Hi I would like to book an appointment"
    assert "How much is a cleaning" in [t.text for t in result.summary]


@pytest.mark.parametrize("text", STRINGS)
def test_hostile_words_and_phrases_never_break_analysis(text):
    words = said(0, 0.0, text or "x") + said(1, 5.0, "fine")
    rules = [Rule("odd", (text or "x",), "any", 5)]
    result = analyse(words, ANSWERED, rules)
    assert 0 <= result.score <= 100
