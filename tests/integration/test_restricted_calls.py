"""Restricted callers through the real Asterisk and SIPp: a caller on the account's restrict
list is connected but never recorded (the compiled dialplan says so before the route runs),
another caller on the same always-recorded route is, with the consent notice and its time
kept as evidence; a caller from abroad presented as a US carrier does (011 44 ...) is not
recorded either; a caller ID full of dialplan syntax is filtered, not run, and one with no
digits at all is looked up as nothing."""

from __future__ import annotations

import datetime as dt

from tests.harness import Stack, sipp_call, wait_for
from tests.integration.test_recordings import consent_stack, query, spool_emptied

RESTRICTED, OTHER = "13125550111", "13125550122"
HOSTILE = "1312$,(555)0111"  # the restricted number once filtered to digits
ABROAD = "011442071234567"  # +44 20 7123 4567 as US carriers present a call from abroad


def _call(stack: Stack, caller: str):
    result = sipp_call(
        stack,
        "12025550123",
        caller,
        "Jane",
        talk_ms=2000,
        scenario="carrier_speech.xml",
        cwd=stack.data_dir,
    )
    assert result.returncode == 0, result.output


def _finished(stack: Stack, count: int):
    return wait_for(
        lambda: (
            (rows := query(stack, "SELECT * FROM calls WHERE disposition IS NOT NULL"))
            and len(rows) == count
            and rows
        ),
        timeout=20,
        what=f"{count} finished calls",
    )


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_a_restricted_caller_is_connected_but_never_recorded(stack: Stack, phone):
    consent_stack(stack)  # always recorded, with the notice 'beep'
    wait_for(lambda: stack.counter("dialplan_reloads") >= 1, what="the routes in Asterisk")
    reloads = stack.counter("dialplan_reloads")
    (account,) = query(stack, "SELECT account_id FROM routes")
    added = stack.appliance("restrict", "add", str(account[0]), "+1 (312) 555-0111")
    assert "+13125550111 restricted" in added.stdout
    reloads = stack.counter("dialplan_reloads")
    added = stack.appliance("restrict", "add", str(account[0]), "+44 20 7123 4567")
    assert "+442071234567 restricted" in added.stdout
    wait_for(lambda: stack.counter("dialplan_reloads") > reloads, what="the list in Asterisk")
    phone(calls=5, scenario="phone_speech.xml")

    _call(stack, RESTRICTED)
    (first,) = _finished(stack, 1)
    assert (first["disposition"], first["restricted"]) == ("answered", 1)
    assert first["consent_announced"] == 0 and first["consent_prompt"] is None

    _call(stack, OTHER)
    (row,) = wait_for(
        lambda: query(stack, "SELECT * FROM recordings"), timeout=20, what="the recording"
    )
    spool_emptied(stack)
    (other,) = [c for c in _finished(stack, 2) if c["caller_number"] == OTHER]
    assert row["call_id"] == other["id"] and other["restricted"] == 0
    assert (other["consent_announced"], other["consent_prompt"]) == (1, "beep")
    heard = _moment(other["consent_at"])
    assert _moment(other["started_at"]) <= heard <= _moment(other["ended_at"])

    _call(stack, HOSTILE)
    (hostile,) = [c for c in _finished(stack, 3) if c["caller_number"] == HOSTILE]
    assert (hostile["disposition"], hostile["restricted"]) == ("answered", 1)
    _call(stack, ABROAD)
    (abroad,) = [c for c in _finished(stack, 4) if c["caller_number"] == ABROAD]
    assert (abroad["disposition"], abroad["restricted"]) == ("answered", 1)
    assert abroad["consent_announced"] == 0
    _call(stack, "anonymous")  # no digits at all; also a fence: once its recording is sealed,
    wait_for(  # any earlier one would be too
        lambda: len(query(stack, "SELECT * FROM recordings")) >= 2, timeout=20, what="the fence"
    )
    spool_emptied(stack)
    (anonymous,) = [c for c in _finished(stack, 5) if c["caller_number"] == "anonymous"]
    assert anonymous["restricted"] == 0
    recorded = {r["call_id"] for r in query(stack, "SELECT call_id FROM recordings")}
    assert recorded == {other["id"], anonymous["id"]}
    listed = stack.appliance("restrict", "list")
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [
        [str(account[0]), "+13125550111"],
        [str(account[0]), "+442071234567"],
    ]
