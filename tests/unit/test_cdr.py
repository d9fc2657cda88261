"""Reconciliation's reading of Asterisk's CDR lines, as recorded from the real Asterisk."""

import pytest

from appliance.calls import cdr

ANSWERED = '''"1795949389.0","1795949389.0","PJSIP/carrier-00000000","+12025550123","1","7","","13125550111","""Jane"" <13125550111>","PJSIP/carrier-00000001","Dial","PJSIP/+12025550199@carrier,3,","1795949389.118857","1795949389.326256","1795949389.830075","ANSWERED","",""
"1795949389.0","1795949389.0","PJSIP/carrier-00000000","+12025550123","1","7","","13125550111","""Jane"" <13125550111>","","Return","","1795949389.830209","1795949389.830209","1795949389.830562","ANSWERED","16","PJSIP/carrier-00000000"
'''
BUSY = '''"1795949390.4","1795949390.4","PJSIP/carrier-00000002","+12025550123","1","7","yes","13125550111","""Jane"" <13125550111>","PJSIP/carrier-00000003","Dial","PJSIP/+12025550199@carrier,3,","1795949390.442178","0.000000","1795949390.444134","BUSY","",""
"1795949390.4","1795949390.4","PJSIP/carrier-00000002","+12025550123","1","7","yes","13125550111","""Jane"" <13125550111>","","Return","","1795949390.444190","0.000000","1795949390.444536","BUSY","17","dialplan/builtin"
'''
NO_ANSWER = '''"1795949391.8","1795949391.8","PJSIP/carrier-00000004","12025550100","0","","","13125550111","""Jane"" <13125550111>","PJSIP/carrier-00000005","Dial","PJSIP/+12025550199@carrier,3,","1795949391.054215","0.000000","1795949394.058698","NO ANSWER","",""
"1795949391.8","1795949391.8","PJSIP/carrier-00000004","12025550100","0","","","13125550111","""Jane"" <13125550111>","","Return","","1795949394.058793","0.000000","1795949394.059171","NO ANSWER","16","dialplan/builtin"
'''


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
    assert abs(call.talk_seconds - 0.5) < 0.01


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
