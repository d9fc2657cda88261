"""Issue: route, log and never drop tracked calls. Real Asterisk, SIPp carrier and phone."""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.harness import Stack, sipp_call, wait_for

pytestmark = pytest.mark.integration
CALLER = "13125550111"


def calls(stack: Stack) -> list[sqlite3.Row]:
    with sqlite3.connect(stack.database) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM calls ORDER BY started_at").fetchall()


def finished(stack: Stack, count: int = 1, timeout: float = 15) -> list[sqlite3.Row]:
    def done():
        rows = calls(stack)
        return rows if len(rows) >= count and all(r["disposition"] for r in rows) else None

    return wait_for(done, timeout=timeout, what=f"{count} finished call record(s)")


def test_answered_call_has_the_right_talk_time(running: Stack, phone):
    phone()
    result = sipp_call(running, "12025550123", CALLER, "Jane Doe", talk_ms=2000)
    assert result.returncode == 0, result.output
    (call,) = finished(running)
    assert call["disposition"] == "answered"
    assert abs(call["talk_seconds"] - 2.0) < 1.0
    assert 0 < call["ring_seconds"] < 2
    assert call["answered_by"] == "+12025550199@carrier"
    assert call["hangup_party"] == "caller"
    assert call["hangup_cause"] == 16
    assert call["first_time"] == 1
    assert call["via"] == "controller"
    assert call["caller_name"] == "Jane Doe"


def test_busy(running: Stack, phone):
    phone(scenario="phone_busy.xml")
    result = sipp_call(running, "12025550123", CALLER, "Jane")
    assert 486 in result.responses, result.messages
    (call,) = finished(running)
    assert call["disposition"] == "busy"
    assert call["talk_seconds"] == 0


def test_no_answer(running: Stack, phone):
    phone(scenario="phone_ring.xml")
    result = sipp_call(running, "12025550123", CALLER, "Jane")
    assert 200 not in result.responses
    (call,) = finished(running)
    assert call["disposition"] == "no_answer"
    assert 2.5 < call["ring_seconds"] < 4.5  # the route rings for 3 s


def test_caller_hangs_up_while_ringing(running: Stack, phone):
    phone(scenario="phone_ring.xml")
    result = sipp_call(
        running, "12025550123", CALLER, "Jane", talk_ms=1000, scenario="carrier_abandon.xml"
    )
    assert result.returncode == 0, result.output
    (call,) = finished(running)
    assert call["disposition"] == "abandoned"
    assert call["hangup_party"] == "caller"
    assert call["answered_at"] is None


def test_unknown_number_takes_the_default_route(running: Stack, phone):
    phone()
    result = sipp_call(running, "12025550100", CALLER, "Jane", talk_ms=500)
    assert result.returncode == 0, result.output
    (call,) = finished(running)
    assert call["tracking_number_id"] is None
    assert call["route_name"] == "Default desk"
    assert call["disposition"] == "answered"


def test_second_call_from_the_same_caller_is_not_first_time(running: Stack, phone):
    phone(calls=2)
    for _ in range(2):
        assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=200).returncode == 0
    first, second = finished(running, 2)
    assert (first["first_time"], second["first_time"]) == (1, 0)


def fallback_pushed(stack: Stack) -> bool:
    out = stack.asterisk_cli("database show appliance_fallback", check=False).stdout
    return "/appliance_fallback/12025550123" in out and "/appliance_fallback/default" in out


def test_controller_down_call_connects_by_fallback_and_is_reconciled(running: Stack, phone):
    wait_for(lambda: fallback_pushed(running), what="fallback routes in AstDB")
    controller = running.processes[-1]
    controller.kill()
    controller.wait()
    phone()
    result = sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=1500)
    assert result.returncode == 0, result.output  # connected with the controller down
    assert calls(running) == []

    running.start_controller()
    (call,) = finished(running)
    assert call["via"] == "fallback"
    assert call["disposition"] == "answered"
    assert abs(call["talk_seconds"] - 1.5) < 1.0
    assert call["tracking_number_id"] is not None
    assert call["caller_number"] == CALLER
    assert "reconciled 1 call(s)" in running.controller_log()


def test_asterisk_restart_reconnects_without_duplicates(running: Stack, phone):
    phone(calls=2)
    assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=300).returncode == 0
    finished(running)
    asterisk = running.processes[0]
    running.asterisk_cli("core stop now", check=False)
    asterisk.wait(10)
    running.processes.remove(asterisk)
    running.start_asterisk()
    wait_for(
        lambda: "AMI reconnected" in running.controller_log(), timeout=15, what="AMI to reconnect"
    )
    assert sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=300).returncode == 0
    rows = finished(running, 2)
    time.sleep(1)  # give a stray duplicate the chance to appear
    assert len(calls(running)) == 2
    assert len({r["linkedid"] for r in rows}) == 2


def test_fifty_calls_at_once(running: Stack, phone):
    phone(calls=50)
    result = sipp_call(running, "12025550123", CALLER, "Jane", talk_ms=3000, calls=50, rate=50)
    assert result.returncode == 0, result.output[-2000:]
    rows = finished(running, 50, timeout=60)
    assert len(rows) == 50
    assert {r["disposition"] for r in rows} == {"answered"}
    assert len({r["linkedid"] for r in rows}) == 50
    assert all(abs(r["talk_seconds"] - 3.0) < 1.0 for r in rows)
    assert sum(r["first_time"] for r in rows) == 1


def test_business_hours_switch_at_the_boundary(stack: Stack, phone):
    """The office route is open until a few seconds from now, then calls go to the night route."""
    now = time.time()
    # Open since a minute ago, closing in 15 s: setup and the first call take under 10 s.
    start, end = time.gmtime(now - 60), time.gmtime(now + 15)
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[start.tm_wday]
    hours = f"{day} {time.strftime('%H:%M:%S', start)}-{time.strftime('%H:%M:%S', end)}"
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    forward = ("--forward", "+12025550199", "--trunk", "carrier")
    stack.appliance("route", "add", "Night", *forward)
    stack.appliance(
        "route",
        "add",
        "Office",
        *forward,
        "--hours",
        hours,
        "--timezone",
        "UTC",
        "--after-hours",
        "Night",
    )
    stack.appliance("number", "add", "+12025550123", "--route", "Office")
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    phone(calls=2)
    assert sipp_call(stack, "12025550123", CALLER, "Jane", talk_ms=200).returncode == 0
    time.sleep(max(0.0, now + 15.5 - time.time()))
    assert sipp_call(stack, "12025550123", CALLER, "Jane", talk_ms=200).returncode == 0
    first, second = finished(stack, 2)
    assert (first["route_name"], first["after_hours"]) == ("Office", 0)
    assert (second["route_name"], second["after_hours"]) == ("Night", 1)
