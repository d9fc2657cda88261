import pytest

from appliance.calls.routing import Decision, InvalidTarget, RoutePlan, Target, decide, dial_target


def test_no_route_means_fallback():
    assert decide(None) == Decision(dial="", ring_timeout=0)
    assert decide(RoutePlan(name="empty", targets=())).dial == ""


def test_simultaneous_rings_every_target():
    plan = RoutePlan(
        name="sales",
        ring_timeout=20,
        targets=(Target("number", "+12025550199", "carrier"), Target("endpoint", "desk-1")),
    )
    assert decide(plan) == Decision(
        dial="PJSIP/+12025550199@carrier&PJSIP/desk-1", ring_timeout=20, route_name="sales"
    )


def test_sequential_starts_with_the_first_target():
    plan = RoutePlan(
        name="s", strategy="sequential", targets=(Target("endpoint", "a"), Target("endpoint", "b"))
    )
    assert decide(plan).dial == "PJSIP/a"


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
    with pytest.raises(InvalidTarget):
        dial_target(target)
