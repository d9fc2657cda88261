"""The AMI call state machine, fed with event streams recorded from the real Asterisk."""

from pathlib import Path

import pytest

from appliance.calls.tracker import CallTracker

AMI = Path(__file__).with_name("ami")


def events(name: str) -> list[dict[str, str]]:
    blocks = (AMI / f"{name}.txt").read_text().split("\n\n")
    return [dict(line.split(": ", 1) for line in b.splitlines()) for b in blocks if b.strip()]


def run(stream):
    tracker = CallTracker()
    outcomes = [o for o in map(tracker.feed, stream) if o is not None]
    return tracker, outcomes


@pytest.mark.parametrize(
    ("name", "disposition", "party"),
    [
        ("answered", "answered", "caller"),
        ("busy", "busy", "callee"),
        ("noanswer", "no_answer", "system"),
        ("abandon", "abandoned", "caller"),
    ],
)
def test_recorded_calls(name, disposition, party):
    tracker, (outcome,) = run(events(name))
    assert outcome.disposition == disposition
    assert outcome.hangup_party == party
    assert outcome.dialled == "12025550123"
    assert outcome.caller_number == "13125550111"
    assert outcome.caller_name == "Jane"
    assert tracker.calls == {}


def test_answered_call_times():
    _, (outcome,) = run(events("answered"))
    assert outcome.answered_by == "+12025550199@carrier"
    assert abs(outcome.talk_seconds - 1.5) < 0.2
    assert 0 < outcome.ring_seconds < 1
    assert outcome.hangup_cause == 16


def test_no_answer_rings_for_the_route_timeout():
    _, (outcome,) = run(events("noanswer"))
    assert abs(outcome.ring_seconds - 3) < 0.2
    assert outcome.talk_seconds == 0 and outcome.answered is None


def test_every_event_twice_still_gives_one_outcome():
    doubled = [e for event in events("answered") for e in (event, dict(event))]
    _, outcomes = run(doubled)
    assert len(outcomes) == 1 and outcomes[0].disposition == "answered"


def test_late_events_after_the_end_are_ignored():
    stream = events("busy")
    tracker, outcomes = run(stream + stream[-3:])
    assert len(outcomes) == 1 and tracker.calls == {}


def test_interleaved_calls_are_kept_apart():
    a, b = events("answered"), events("busy")
    mixed = [e for pair in zip(a, b, strict=False) for e in pair] + a[len(b) :] + b[len(a) :]
    _, outcomes = run(mixed)
    assert sorted(o.disposition for o in outcomes) == ["answered", "busy"]


def test_malformed_events_are_skipped():
    tracker, outcomes = run(
        [
            {},
            {"Event": "Hangup"},
            {"Event": "Newchannel", "Linkedid": "x"},
            {"Event": "DialEnd", "Linkedid": "1", "Uniqueid": "1", "Timestamp": "not-a-time"},
        ]
    )
    assert outcomes == []
