"""Route, log and never drop tracked calls. Real Asterisk, SIPp carrier and phone."""

from __future__ import annotations

import pytest

from tests.harness import Stack, sipp_call, wait_for

CALLER = "13125550111"


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    """One running stack for the module, reset between tests (test_call_recovery.py has the
    tests that stop and restart its processes)."""
    return module_stack.reset()


@pytest.fixture
def running(stack: Stack) -> Stack:
    return stack


def test_answered_call_has_the_right_talk_time(running: Stack, phone):
    phone()
    result = sipp_call(running, "12025550123", CALLER, "Jane Doe", talk_ms=2000)
    assert result.returncode == 0, result.output
    (call,) = running.finished()
    assert call["disposition"] == "answered"
    assert abs(call["talk_seconds"] - 2.0) < 1.0
    assert 0 < call["ring_seconds"] < 2
    assert call["answered_by"] == "+12025550199@carrier"
    assert call["hangup_party"] == "caller"
    assert call["hangup_cause"] == 16
    assert call["first_time"] == 1
    assert call["via"] == "live"
    assert call["caller_name"] == "Jane Doe"
    assert call["dialled"] == "+12025550123"
    assert call["route_name"] == "Spring flyer" and call["route_id"] is not None


@pytest.mark.parametrize("dialled", ["12025550123", "+12025550123", "2025550123"])
def test_the_dialled_number_is_stored_in_e164_whatever_the_carrier_sends(running, phone, dialled):
    phone()
    assert sipp_call(running, dialled, CALLER, "Jane", talk_ms=200).returncode == 0
    (call,) = running.finished()
    assert call["dialled"] == "+12025550123" and call["tracking_number_id"] is not None


def test_busy(running: Stack, phone):
    phone(scenario="phone_busy.xml")
    result = sipp_call(running, "12025550123", CALLER, "Jane")
    assert 486 in result.responses, result.messages
    (call,) = running.finished()
    assert call["disposition"] == "busy"
    assert call["talk_seconds"] == 0


def test_no_answer(running: Stack, phone):
    phone(scenario="phone_ring.xml")
    result = sipp_call(running, "12025550123", CALLER, "Jane")
    assert 200 not in result.responses
    (call,) = running.finished()
    assert call["disposition"] == "no_answer"
    assert 2.5 < call["ring_seconds"] < 4.5  # the route rings for 3 s


def test_caller_hangs_up_while_ringing(running: Stack, phone):
    phone(scenario="phone_ring.xml")
    result = sipp_call(
        running, "12025550123", CALLER, "Jane", talk_ms=1000, scenario="carrier_abandon.xml"
    )
    assert result.returncode == 0, result.output
    (call,) = running.finished()
    assert call["disposition"] == "abandoned"
    assert call["hangup_party"] == "caller"
    assert call["answered_at"] is None


def test_unknown_number_takes_the_default_route(running: Stack, phone):
    phone()
    result = sipp_call(running, "12025550100", CALLER, "Jane", talk_ms=500)
    assert result.returncode == 0, result.output
    (call,) = running.finished()
    assert call["tracking_number_id"] is None
    assert call["route_name"] == "Default desk"
    assert call["dialled"] == "+12025550100"
    assert call["disposition"] == "answered"


def test_second_call_from_the_same_caller_is_not_first_time(running: Stack, phone):
    phone(calls=2)
    for _ in range(2):
        assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=200).returncode == 0
    first, second = running.finished(2)
    assert (first["first_time"], second["first_time"]) == (1, 0)


def test_fifty_calls_at_once(running: Stack, phone):
    phone(calls=50)
    result = sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=3000, calls=50, rate=50)
    assert result.returncode == 0, result.output[-2000:]
    rows = running.finished(50, timeout=60)
    assert len(rows) == 50
    assert {r["disposition"] for r in rows} == {"answered"}
    assert len({r["linkedid"] for r in rows}) == 50
    assert len({r["id"] for r in rows}) == 50
    assert all(abs(r["talk_seconds"] - 3.0) < 1.0 for r in rows)
    assert sum(r["first_time"] for r in rows) == 1


def test_a_route_change_takes_effect_within_seconds_without_touching_live_calls(
    running: Stack, phone
):
    phone(calls=2)
    reloads = running.counter("dialplan_reloads")
    live = running.sipp_background("12025550123", CALLER, talk_ms=6000)
    wait_for(lambda: running.calls(), what="the live call's record")
    forward = ("--forward", "+12025550188", "--trunk", "carrier")
    running.appliance("route", "add", "Summer flyer", *forward)
    running.appliance("number", "add", "+12025550124", "--route", "Summer flyer")
    wait_for(
        lambda: running.counter("dialplan_reloads") > reloads,
        timeout=10,
        what="the new route in Asterisk",
    )
    assert sipp_call(running, "12025550124", CALLER, "Jane", talk_ms=200).returncode == 0
    assert live.wait(30) == 0
    first, second = running.finished(2)
    assert first["disposition"] == "answered" and abs(first["talk_seconds"] - 6.0) < 1.0
    assert second["route_name"] == "Summer flyer"
    assert second["answered_by"] == "+12025550188@carrier"
