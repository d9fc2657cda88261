"""Issue: route, log and never drop tracked calls. Real Asterisk, SIPp carrier and phone."""

from __future__ import annotations

import sqlite3

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
