"""The AMI call state machine, fed with event streams recorded from the real Asterisk."""

from pathlib import Path

import pytest

from appliance.calls.model import CallAnswered, CallStarted
from appliance.calls.outcome import CallOutcome
from appliance.calls.tracker import CallTracker
from appliance.recordings.live import refusal
from appliance.vocabulary import is_call_id

AMI = Path(__file__).with_name("ami")


def events(name: str) -> list[dict[str, str]]:
    blocks = (AMI / f"{name}.txt").read_text().split("\n\n")
    return [dict(line.split(": ", 1) for line in b.splitlines()) for b in blocks if b.strip()]


def run(stream):
    tracker = CallTracker()
    outcomes = [o for o in map(tracker.feed, stream) if isinstance(o, CallOutcome)]
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


def test_a_call_joined_after_it_started_is_left_to_the_cdr():
    """The controller restarted during the call: it sees the hangups only, and must not
    record an answered call with no answer time (reconciliation records it from the CDR)."""
    stream = events("answered")
    first_seen = max(i for i, e in enumerate(stream) if e.get("Event") == "BridgeEnter") + 1
    tracker, outcomes = run(stream[first_seen:])
    assert outcomes == [] and tracker.calls == {}


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
    _tracker, outcomes = run(
        [
            {},
            {"Event": "Hangup"},
            {"Event": "Newchannel", "Linkedid": "x"},
            {"Event": "DialEnd", "Linkedid": "1", "Uniqueid": "1", "Timestamp": "not-a-time"},
        ]
    )
    assert outcomes == []


def route_event(call: str, **fields: str) -> dict[str, str]:
    """The dialplan's UserEvent ApplianceRoute for the inbound channel of a recorded call."""
    first = events(call)[0]
    return {
        "Event": "UserEvent",
        "UserEvent": "ApplianceRoute",
        "Uniqueid": first["Uniqueid"],
        "Linkedid": first["Linkedid"],
        "Route": "7",
        "Number": "3",
        "Dialled": "+12025550123",
        "AfterHours": "yes",
        "Recording": "on_demand",
        **fields,
    }


def test_the_route_event_starts_the_call_once_with_a_random_id():
    stream = events("answered")
    stream[1:1] = [route_event("answered"), route_event("answered")]
    tracker = CallTracker()
    written = [w for w in map(tracker.feed, stream) if w is not None]
    started, answered, outcome = written
    assert isinstance(started, CallStarted) and isinstance(outcome, CallOutcome)
    assert isinstance(answered, CallAnswered) and answered.answered == outcome.answered
    assert (started.number_id, started.route_id, started.after_hours) == (3, 7, True)
    assert started.dialled == "+12025550123" and started.caller_number == "13125550111"
    assert is_call_id(started.call_id)
    assert (outcome.route_id, outcome.number_id, outcome.after_hours) == (7, 3, True)


def answers(stream):
    tracker = CallTracker()
    return [w for w in map(tracker.feed, stream) if isinstance(w, CallAnswered)]


def test_the_answer_is_written_once_when_the_destination_answers():
    stream = events("answered")
    (answer,) = answers(stream)
    dial_end = next(e for e in stream if e.get("DialStatus") == "ANSWER")
    assert answer == CallAnswered(dial_end["Linkedid"], float(dial_end["Timestamp"]))


def test_a_replayed_answer_or_bridge_writes_no_second_answer():
    doubled = [e for event in events("answered") for e in (event, dict(event))]
    assert len(answers(doubled)) == 1


def test_the_bridge_tells_the_answer_when_dialend_did_not():
    stream = [e for e in events("answered") if e.get("Event") != "DialEnd"]
    (answer,) = answers(stream)
    bridge = next(
        e for e in stream if e.get("Event") == "BridgeEnter" and e["Uniqueid"] != e["Linkedid"]
    )
    assert answer.answered == float(bridge["Timestamp"])


@pytest.mark.parametrize("name", ["busy", "noanswer", "abandon"])
def test_a_call_nobody_answered_writes_no_answer(name):
    assert answers(events(name)) == []


def test_what_a_live_call_allows_is_known_while_it_lasts():
    stream = events("answered")
    tracker = CallTracker()
    for event in [stream[0], route_event("answered")]:
        tracker.feed(event)
    live = tracker.live(stream[0]["Linkedid"])
    assert live.channel == "PJSIP/carrier-00000002"
    assert (live.route_id, live.recording_mode, live.recording) == (7, "on_demand", False)
    tracker.feed({**route_event("answered"), "UserEvent": "ApplianceRecording", "State": "started"})
    assert tracker.live(stream[0]["Linkedid"]).recording is True
    for event in stream[1:]:
        tracker.feed(event)
    assert tracker.live(stream[0]["Linkedid"]) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"Route": "7,Route: 9"},
        {"Route": "-1"},
        {"Route": "٣"},
        {"Number": "99999999999999"},
        {"Route": ""},
    ],
)
def test_route_ids_that_are_not_plain_numbers_are_ignored(fields):
    tracker = CallTracker()
    tracker.feed(events("answered")[0])
    started = tracker.feed(route_event("answered", **fields))
    assert started.route_id in (None, 7) and started.number_id in (None, 3)


def consent_event(**fields: str) -> dict[str, str]:
    """The [appliance-record] subroutine's UserEvent ApplianceConsent, a second into the call."""
    start = float(events("answered")[0]["Timestamp"])
    given = {"OptedOut": "no", "Prompt": "custom/notice", "Timestamp": f"{start + 1:.6f}"}
    return route_event("answered", UserEvent="ApplianceConsent", **(given | fields))


def test_the_consent_evidence_is_the_prompt_played_and_when():
    stream = events("answered")
    stream[1:1] = [route_event("answered"), consent_event()]
    _, (outcome,) = run(stream)
    assert outcome.consent_announced and not outcome.recording_opted_out
    assert outcome.consent_prompt == "custom/notice"
    assert outcome.consent_at == float(stream[0]["Timestamp"]) + 1
    assert outcome.started <= outcome.consent_at <= outcome.ended


def test_an_opt_out_keeps_its_evidence_too():
    stream = events("answered")
    stream[1:1] = [route_event("answered"), consent_event(OptedOut="yes")]
    _, (outcome,) = run(stream)
    assert outcome.recording_opted_out and outcome.consent_prompt == "custom/notice"


@pytest.mark.parametrize(
    "prompt", ["", "../../etc/passwd", "a,b", "${SHELL(id)}", "<svg/onload=x>", "x" * 200]
)
def test_a_prompt_that_is_not_a_sound_name_is_not_kept(prompt):
    stream = events("answered")
    stream[1:1] = [route_event("answered"), consent_event(Prompt=prompt)]
    _, (outcome,) = run(stream)
    assert outcome.consent_announced and outcome.consent_prompt is None


def test_a_call_without_a_notice_has_no_consent_evidence():
    _, (outcome,) = run(events("answered"))
    assert (outcome.consent_prompt, outcome.consent_at) == (None, None)


def test_the_dialplan_marks_a_restricted_caller_and_no_recording_starts_on_demand():
    stream = events("answered")
    tracker = CallTracker()
    tracker.feed(stream[0])
    started = tracker.feed(route_event("answered", Restricted="1"))
    assert started.restricted
    live = tracker.live(stream[0]["Linkedid"])
    assert live.restricted and refusal(live) == "the caller is on the restrict list: never recorded"
    for event in stream[1:]:
        tracker.feed(event)


@pytest.mark.parametrize("value", ["", "0", "1,Restricted: 1", "yes"])
def test_anything_but_1_is_not_restricted(value):
    tracker = CallTracker()
    tracker.feed(events("answered")[0])
    assert not tracker.feed(route_event("answered", Restricted=value)).restricted


def test_a_call_tracked_by_an_integrator_s_dialplan_ends_with_its_tracking_number():
    """AGI `track`: no ApplianceRoute event; the call's start and number come from the script,
    and its outcome (ring, answer, hangup) from the AMI events, as for any call."""
    stream = events("answered")
    linkedid = stream[0]["Linkedid"]
    tracker = CallTracker()
    assert tracker.started(linkedid) is None
    tracker.feed(stream[0])
    assert tracker.started(linkedid) == pytest.approx(float(stream[0]["Timestamp"]))
    tracker.adopt(linkedid, 3, "+12025550123")
    tracker.adopt("no-such-call", 4, "+12025550100")  # nothing to adopt: nothing happens
    outcomes = [o for o in map(tracker.feed, stream[1:]) if isinstance(o, CallOutcome)]
    (outcome,) = outcomes
    assert outcome.number_id == 3 and outcome.dialled == "+12025550123"
    assert outcome.disposition == "answered" and tracker.calls == {}
    tracker.adopt(linkedid, 5, "+12025550100")  # over: nothing comes back to life
    assert tracker.calls == {}
