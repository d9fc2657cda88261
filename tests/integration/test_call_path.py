"""Route, log and never drop tracked calls. Real Asterisk, SIPp carrier and phone."""

from __future__ import annotations

import pytest

from tests.harness import Stack, sipp_call, wait_for

pytestmark = pytest.mark.integration
CALLER = "13125550111"


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


def cdr_files(stack: Stack) -> list[str]:
    return sorted(p.name for p in (stack.asterisk_dir_on_host / "log" / "cdr-custom").iterdir())


def test_controller_down_calls_connect_and_are_reconciled_in_full(running: Stack, phone):
    """With the controller killed, calls still connect (the route is Asterisk's own
    dialplan); once it is back, each is recorded once, with its route and who hung up, and
    Asterisk's CDR file, which holds callers' numbers, is gone."""
    controller = running.processes.pop()
    controller.kill()
    controller.wait()
    phone(calls=2, scenario="phone_answer.xml")
    assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=1500).returncode == 0
    assert sipp_call(running, "12025550100", CALLER, "Jane", talk_ms=300).returncode == 0
    assert running.calls() == []
    assert cdr_files(running) == ["appliance.csv"]

    running.start_controller()
    wait_for(lambda: running.counter("reconciled_calls") == 2, what="two calls reconciled")
    first, second = running.finished(2)
    assert first["via"] == second["via"] == "reconciled"
    assert (first["route_name"], second["route_name"]) == ("Spring flyer", "Default desk")
    assert first["disposition"] == "answered" and abs(first["talk_seconds"] - 1.5) < 1.0
    assert first["hangup_party"] == "caller" and first["hangup_cause"] == 16
    assert first["tracking_number_id"] is not None and first["dialled"] == "+12025550123"
    assert second["dialled"] == "+12025550100"
    assert first["caller_number"] == CALLER
    assert cdr_files(running) == []


def test_calls_followed_live_leave_no_cdr_file_behind(running: Stack, phone):
    phone()
    assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=200).returncode == 0
    running.finished()
    assert cdr_files(running) == ["appliance.csv"]
    controller = running.processes.pop()
    running.stop(controller)
    running.start_controller()  # reconciles at every AMI login (and every minute)
    wait_for(lambda: cdr_files(running) == [], what="the CDR file to be removed")
    assert len(running.calls()) == 1 and running.counter("reconciled_calls") == 0


def test_asterisk_restart_reconnects_without_duplicates(running: Stack, phone):
    phone(calls=2)
    assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=300).returncode == 0
    running.finished()
    assert running.counter("ami_logins") == 1
    asterisk = running.processes[0]
    running.asterisk_cli("core stop now", check=False)
    asterisk.wait(10)
    running.processes.remove(asterisk)
    running.start_asterisk()
    wait_for(lambda: running.counter("ami_logins") == 2, timeout=15, what="AMI to log in again")
    assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=300).returncode == 0
    rows = running.finished(2)
    wait_for(lambda: running.counter("dialplan_reloads") >= 2, what="the routes reloaded")
    assert len(running.calls()) == 2
    assert len({r["linkedid"] for r in rows}) == 2


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
