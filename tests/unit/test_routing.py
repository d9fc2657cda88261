import datetime as dt

import pytest

from appliance.calls.routing import (
    Decision,
    InvalidRoute,
    RoutePlan,
    Target,
    connect,
    decide,
    dial_target,
    hours_chain,
)
from appliance.vocabulary import RecordingMode, RingStrategy, TargetKind

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in New York
NUMBER, ENDPOINT = TargetKind.NUMBER, TargetKind.ENDPOINT
SALES = RoutePlan(
    id=1,
    name="sales",
    ring_timeout=20,
    targets=(Target(NUMBER, "+12025550199", "carrier"), Target(ENDPOINT, "desk-1")),
)
NIGHT = RoutePlan(id=2, name="voicemail desk", targets=(Target(ENDPOINT, "night"),))
DAY = RoutePlan(
    id=3,
    name="office",
    targets=(Target(ENDPOINT, "day"),),
    hours="mon-fri 09:00-17:00",
    timezone="America/New_York",
    after_hours=NIGHT,
)


def test_no_route_and_no_default_means_no_route():
    assert decide(None, NOW) == Decision(None)


def test_unknown_number_takes_the_default_route():
    assert decide(None, NOW, default=SALES) == Decision(SALES)


def test_simultaneous_rings_every_target_in_one_dial():
    assert connect(SALES).dials == ("PJSIP/+12025550199@carrier&PJSIP/desk-1",)
    assert connect(SALES).ring_timeout == 20


def test_sequential_rings_one_after_another():
    plan = RoutePlan(
        id=4,
        name="s",
        strategy=RingStrategy.SEQUENTIAL,
        targets=(Target(ENDPOINT, "a"), Target(ENDPOINT, "b")),
    )
    assert connect(plan).dials == ("PJSIP/a", "PJSIP/b")


def test_announcement_whisper_and_recording():
    plan = RoutePlan(
        id=5,
        name="r",
        targets=(Target(ENDPOINT, "a"),),
        announcement="custom/recording-notice",
        whisper="beep",
        recording=RecordingMode.ALWAYS,
        consent_prompt="beep",
        consent_opt_out=True,
    )
    connected = connect(plan)
    assert connected.announcement == "custom/recording-notice"
    assert connected.dial_options == "U(appliance-whisper^beep)"
    assert (connected.recording, connected.consent_prompt, connected.consent_opt_out) == (
        RecordingMode.ALWAYS,
        "beep",
        True,
    )
    paused = connect(plan, recording_paused=True)
    assert (paused.recording, paused.consent_prompt, paused.consent_opt_out) == (
        RecordingMode.NEVER,
        "",
        False,
    )


def test_business_hours_switch_to_the_after_hours_route():
    open_at = dt.datetime(2026, 11, 30, 21, 59, tzinfo=dt.UTC)  # 16:59 in New York
    closed_at = open_at + dt.timedelta(minutes=1)
    assert decide(DAY, open_at) == Decision(DAY, after_hours=False)
    assert decide(DAY, closed_at) == Decision(NIGHT, after_hours=True)


def test_hours_without_an_after_hours_route_are_ignored():
    plan = RoutePlan(id=6, name="r", targets=(Target(ENDPOINT, "a"),), hours="sat 01:00-02:00")
    assert hours_chain(plan).steps == ()
    assert decide(plan, NOW) == Decision(plan)


def test_after_hours_chains_stop_after_three_steps_even_in_a_cycle():
    """A -> B -> A -> B, as the store unrolls a cycle (it stops after four levels)."""
    closed = "sat 01:00-02:00"
    plan = None
    for route_id in (11, 10, 11, 10):
        plan = RoutePlan(id=route_id, name="", targets=(), hours=closed, after_hours=plan)
    chain = hours_chain(plan)
    assert [step.route.id for step in chain.steps] == [10, 11, 10]
    assert chain.final.id == 11 and chain.final.after_hours is None
    assert decide(plan, NOW) == Decision(chain.final, after_hours=True)


def test_unreadable_hours_are_reported_and_ignored():
    plan = RoutePlan(id=7, name="r", targets=(), hours="someday", after_hours=NIGHT)
    chain = hours_chain(plan)
    assert chain.steps == () and chain.final is plan
    assert "someday" in chain.problems[0]


@pytest.mark.parametrize(
    "target",
    [
        Target(NUMBER, "+1202555&PJSIP/evil", "carrier"),
        Target(NUMBER, "12025550199", "carrier"),
        Target(NUMBER, "+12025550199", None),
        Target(NUMBER, "+12025550199", "car,rier"),
        Target(ENDPOINT, "desk)|Dial(evil"),
        Target("fax", "x"),  # type: ignore[arg-type]
    ],
)
def test_targets_that_could_inject_into_a_dial_string_are_refused(target):
    with pytest.raises(InvalidRoute):
        dial_target(target)


@pytest.mark.parametrize("sound", ["../etc/passwd", "a,b", "x)", "a b", "/abs"])
def test_prompts_that_could_inject_are_refused(sound):
    plan = RoutePlan(id=8, name="r", targets=(Target(ENDPOINT, "a"),), whisper=sound)
    with pytest.raises(InvalidRoute):
        connect(plan)
