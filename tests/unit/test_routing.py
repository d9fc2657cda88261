import datetime as dt

import pytest

from appliance.calls.routing import (
    Decision,
    InvalidRoute,
    RoutePlan,
    Target,
    channel_variables,
    decide,
    dial_target,
    fallback_dial,
)

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in New York
SALES = RoutePlan(
    name="sales",
    ring_timeout=20,
    targets=(Target("number", "+12025550199", "carrier"), Target("endpoint", "desk-1")),
)


def test_no_route_and_no_default_means_fallback():
    assert decide(None, NOW) == Decision(dials=())
    assert channel_variables(decide(None, NOW), "c1") == {"APPLIANCE_CALL_ID": "c1"}


def test_unknown_number_takes_the_default_route():
    assert decide(None, NOW, default=SALES).route_name == "sales"


def test_simultaneous_rings_every_target_in_one_dial():
    decision = decide(SALES, NOW)
    assert decision.dials == ("PJSIP/+12025550199@carrier&PJSIP/desk-1",)
    assert channel_variables(decision, "c1") == {
        "APPLIANCE_CALL_ID": "c1",
        "APPLIANCE_DIAL": "PJSIP/+12025550199@carrier&PJSIP/desk-1",
        "APPLIANCE_DIAL_COUNT": "1",
        "APPLIANCE_RING_TIMEOUT": "20",
    }


def test_sequential_rings_one_after_another():
    plan = RoutePlan(
        name="s",
        strategy="sequential",
        ring_timeout=10,
        targets=(Target("endpoint", "a"), Target("endpoint", "b")),
    )
    variables = channel_variables(decide(plan, NOW), "c1")
    assert variables["APPLIANCE_DIAL"] == "PJSIP/a"
    assert variables["APPLIANCE_DIAL_2"] == "PJSIP/b"
    assert variables["APPLIANCE_DIAL_COUNT"] == "2"


def test_announcement_and_whisper():
    plan = RoutePlan(
        name="r",
        targets=(Target("endpoint", "a"),),
        announcement="custom/recording-notice",
        whisper="beep",
    )
    variables = channel_variables(decide(plan, NOW), "c1")
    assert variables["APPLIANCE_ANNOUNCE"] == "custom/recording-notice"
    assert variables["APPLIANCE_DIAL_OPTIONS"] == "U(appliance-whisper^beep)"


def test_business_hours_switch_to_the_after_hours_route():
    night = RoutePlan(name="voicemail desk", targets=(Target("endpoint", "night"),))
    day = RoutePlan(
        name="office",
        targets=(Target("endpoint", "day"),),
        hours="mon-fri 09:00-17:00",
        timezone="America/New_York",
        after_hours=night,
    )
    open_at = dt.datetime(2026, 11, 30, 21, 59, 59, tzinfo=dt.UTC)  # 16:59:59 in New York
    closed_at = open_at + dt.timedelta(seconds=1)
    assert decide(day, open_at).route_name == "office"
    assert decide(day, open_at).after_hours is False
    assert decide(day, closed_at).route_name == "voicemail desk"
    assert decide(day, closed_at).after_hours is True


def test_closed_route_without_after_hours_is_an_error():
    plan = RoutePlan(name="r", targets=(Target("endpoint", "a"),), hours="sat 01:00-02:00")
    with pytest.raises(InvalidRoute, match="no after-hours route"):
        decide(plan, NOW)


def test_fallback_rings_every_target_at_once():
    plan = RoutePlan(
        name="s", strategy="sequential", targets=(Target("endpoint", "a"), Target("endpoint", "b"))
    )
    assert fallback_dial(plan) == "PJSIP/a&PJSIP/b"


@pytest.mark.parametrize(
    "target",
    [
        Target("number", "+1202555&PJSIP/evil", "carrier"),
        Target("number", "12025550199", "carrier"),
        Target("number", "+12025550199", None),
        Target("number", "+12025550199", "car,rier"),
        Target("endpoint", "desk)|Dial(evil"),
        Target("fax", "x"),
    ],
)
def test_targets_that_could_inject_into_a_dial_string_are_refused(target):
    with pytest.raises(InvalidRoute):
        dial_target(target)


@pytest.mark.parametrize("sound", ["../etc/passwd", "a,b", "x)", "a b", "/abs"])
def test_prompts_that_could_inject_are_refused(sound):
    plan = RoutePlan(name="r", targets=(Target("endpoint", "a"),), whisper=sound)
    with pytest.raises(InvalidRoute):
        decide(plan, NOW)
