"""Reconciliation's reading of Asterisk's CDR lines, as recorded from the real Asterisk."""

from pathlib import Path

import pytest

from appliance.calls import cdr

HERE = Path(__file__).with_name("cdr")  # lines Asterisk wrote for a call each

ANSWERED = (HERE / "answered.csv").read_text()
BUSY = (HERE / "busy.csv").read_text()
NO_ANSWER = (HERE / "noanswer.csv").read_text()


def one(text: str):
    rows, bad = cdr.parse(text)
    assert bad == 0
    (outcome,) = cdr.outcomes(rows)
    return outcome


def test_answered_call_with_its_route_and_who_hung_up():
    call = one(ANSWERED)
    assert (call.disposition, call.hangup_party, call.hangup_cause) == ("answered", "caller", 16)
    assert (call.number_id, call.route_id, call.after_hours) == (1, 7, False)
    assert (call.dialled, call.caller_number, call.caller_name) == (
        "+12025550123",
        "13125550111",
        "Jane",
    )
    assert call.answered_by == "+12025550199@carrier" and call.reconciled
    assert abs(call.talk_seconds - 0.51) < 0.01


def test_busy_is_the_callee_and_no_answer_the_system():
    busy, quiet = one(BUSY), one(NO_ANSWER)
    assert (busy.disposition, busy.hangup_party, busy.after_hours) == ("busy", "callee", True)
    assert (quiet.disposition, quiet.hangup_party) == ("no_answer", "system")
    assert (quiet.number_id, quiet.route_id) == (None, None)
    assert 2.9 < quiet.ring_seconds < 3.1


@pytest.mark.parametrize(
    "line",
    ['"a","b"', "", '"x"' + ',"y"' * 40, "\x00\x01"],
)
def test_malformed_lines_are_counted_and_skipped(line):
    rows, bad = cdr.parse(line + "\n" + ANSWERED)
    assert len(rows) == 2 and bad >= (1 if line.strip() else 0)
