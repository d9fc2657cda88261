"""The integrator AGI scripts from a dialplan the appliance did not write: a context in
extensions_local.conf runs them during real SIPp calls through the real Asterisk, keeps what
they set in AstDB (read back with `database show`), and the call's record shows the rest."""

from __future__ import annotations

import re

import pytest

from appliance.calls import variables as var
from tests.harness import Stack, invited, sipp_call, wait_for

CALLER = "13125550111"
TRACKED = "+12025550123"  # the `running` fixture's tracking number (source Google Ads)
CONTEXT = "integrator-test"


def results(*names: str) -> str:
    """A dialplan value holding what the last script set, '/' between."""
    return "/".join(f"${{{name}}}" for name in names)


def steps(agi: str, *commands: str) -> str:
    """One extension of the test context: each command is a dialplan step; 'AGI ...' runs a
    script at the controller, 'KEEP key=value' stores a value in AstDB (family agi), and
    '(label)App()' is a step with a label."""
    lines = []
    for command in commands:
        if command.startswith("AGI "):
            lines.append(f"AGI({agi}/{command[4:]})")
        elif command.startswith("KEEP "):
            key, value = command[5:].split("=", 1)
            lines.append(f"Set(DB(agi/{key})={value})")
        else:
            lines.append(command)
    return "\n".join(
        f" same => n{line[: line.index(')') + 1]},{line[line.index(')') + 1 :]}"
        if line.startswith("(")
        else f" same => n,{line}"
        for line in lines
    )


def install(stack: Stack, extensions: dict[str, list[str]]) -> None:
    """The integrator's own context, reached from numbers 55501xx of the inbound context
    (an exact extension added there wins over the appliance's patterns)."""
    agi = f"agi://127.0.0.1:{stack.agi_port}"
    text = f"[appliance-inbound](+)\nexten => _55501XX,1,Goto({CONTEXT},${{EXTEN}},1)\n\n"
    text += f"[{CONTEXT}]\n"
    for exten, commands in extensions.items():
        text += f"exten => {exten},1,NoOp()\n{steps(agi, *commands)}\n"
    (stack.asterisk_dir_on_host / "etc" / "extensions_local.conf").write_text(text)
    stack.asterisk_cli("dialplan reload")
    wait_for(
        lambda: all(
            exten in stack.asterisk_cli(f"dialplan show {CONTEXT}", check=False).stdout
            for exten in extensions
        ),
        what="the integrator's context loaded",
    )


def kept(stack: Stack) -> dict[str, str]:
    """What the dialplan stored in AstDB family 'agi'."""
    out = stack.asterisk_cli("database show agi").stdout
    return {m[1]: m[2].strip() for m in re.finditer(r"^/agi/(\S+)\s*:\s?(.*)$", out, re.M)}


def call(stack: Stack, exten: str, talk_ms: int = 300) -> None:
    result = sipp_call(stack, exten, CALLER, "Jane", talk_ms=talk_ms)
    assert result.returncode == 0, result.output


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    """One running stack for the module, reset between tests, with nothing left in AstDB
    (test_integrator_agi_bin.py has the tests that give Asterisk more of the box, or stop the
    controller, on stacks of their own)."""
    module_stack.reset().asterisk_cli("database deltree agi")
    return module_stack


@pytest.fixture
def running(stack: Stack) -> Stack:
    return stack


TRACK_ANSWER = (var.STATUS, var.READY, var.CALL_ID, var.NUMBER, var.SOURCE, var.FIRST_TIME)


def test_agi_track_records_the_call_once_under_the_id_it_sets(running: Stack):
    install(
        running,
        {
            "5550101": [
                f"AGI track,{TRACKED}",
                f"KEEP first={results(*TRACK_ANSWER)}",
                "AGI track",  # the same call again: the same record
                f"KEEP again={results(var.STATUS, var.CALL_ID)}",
                "Answer()",
                "Wait(10)",
            ]
        },
    )
    call(running, "5550101")
    (record,) = running.finished()
    number_id = running.query("SELECT id FROM tracking_numbers WHERE e164 = ?", TRACKED)[0]["id"]
    values = kept(running)
    assert values["first"] == f"ok/1/{record['id']}/{number_id}/Google Ads/1"
    assert values["again"] == f"ok/{record['id']}"
    assert record["tracking_number_id"] == number_id and record["dialled"] == TRACKED
    assert record["source_name"] == "Google Ads" and record["caller_number"] == CALLER
    assert record["ended_at"] is not None and record["via"] == "live"


def test_agi_track_refuses_what_is_not_a_number_and_the_call_goes_on(running: Stack):
    install(
        running,
        {
            "5550102": [
                "AGI track,2025550123 OR 1=1",
                f"KEEP bad={results(var.STATUS, var.READY, var.CALL_ID)}",
                "Answer()",
                "Wait(10)",
            ]
        },
    )
    call(running, "5550102")
    (record,) = running.finished()  # followed like any call, without a tracking number
    assert kept(running)["bad"] == "bad-number//"
    assert record["tracking_number_id"] is None


def test_agi_tag_tags_the_tracked_call_and_refuses_what_is_not_a_tag(running: Stack):
    install(
        running,
        {
            "5550103": [
                "AGI tag,vip",  # not tracked yet: nothing to tag
                f"KEEP early={results(var.STATUS, var.READY)}",
                "AGI track",
                "AGI tag,vip,Sales",  # Asterisk splits at commas: two tags
                f"KEEP tagged={results(var.STATUS, var.READY, var.TAGS)}",
                "AGI tag,no way!",
                f"KEEP refused={results(var.STATUS, var.READY)}",
                "Answer()",
                "Wait(10)",
            ]
        },
    )
    call(running, "5550103")
    (record,) = running.finished()
    values = kept(running)
    assert values["early"] == "not-tracked/"
    assert values["tagged"] == "ok/1/sales,vip" and values["refused"] == "bad-tags/"
    rows = running.query("SELECT tag, origin FROM call_tags WHERE call_id = ?", record["id"])
    assert sorted(tuple(r) for r in rows) == [("sales", "agi"), ("vip", "agi")]


def test_agi_score_adjusts_the_lead_score_within_bounds(running: Stack):
    install(
        running,
        {
            "5550104": [
                "AGI track",
                "AGI score,+15",
                f"KEEP up={results(var.STATUS, var.SCORE)}",
                "AGI score,-5",
                f"KEEP down={results(var.STATUS, var.SCORE)}",
                "AGI score,500",
                f"KEEP refused={results(var.STATUS, var.READY)}",
                "Answer()",
                "Wait(10)",
            ]
        },
    )
    call(running, "5550104")
    (record,) = running.finished()
    values = kept(running)
    assert values["up"] == "ok/15" and values["down"] == "ok/10"
    assert values["refused"] == "bad-score/"
    assert record["score_adjustment"] == 10


def test_agi_note_attaches_a_note_even_with_commas_in_it(running: Stack):
    install(
        running,
        {
            "5550105": [
                "AGI track",
                "AGI note,Asked about pricing, wants a callback",
                f"KEEP noted={results(var.STATUS, var.READY)}",
                "AGI note",
                f"KEEP empty={results(var.STATUS, var.READY)}",
                "Answer()",
                "Wait(10)",
            ]
        },
    )
    call(running, "5550105")
    (record,) = running.finished()
    values = kept(running)
    assert values["noted"] == "ok/1" and values["empty"] == "bad-note/"
    notes = running.query("SELECT text, origin FROM call_notes WHERE call_id = ?", record["id"])
    assert [tuple(n) for n in notes] == [("Asked about pricing, wants a callback", "agi")]


def test_agi_lookup_tells_the_dialplan_what_is_known_of_a_call(running: Stack):
    install(
        running,
        {
            "5550106": [
                f"AGI track,{TRACKED}",
                "Set(ID=${APPLIANCE_CALL_ID})",
                "AGI tag,returning",
                "AGI score,20",
                f"Set({var.SOURCE}=)",  # lookup sets it again
                "AGI lookup",
                f"KEEP current={results(var.STATUS, var.READY, var.CALL_ID, var.SOURCE)}",
                f"KEEP more={results(var.TAGS, var.SCORE, var.FIRST_TIME)}",
                "AGI lookup,${ID}",
                f"KEEP given={results(var.STATUS, var.CALL_ID)}",
                "AGI lookup,0123456789abcdef0123456789abcdef",
                f"KEEP unknown={results(var.STATUS, var.READY)}",
                "AGI lookup,../../etc/passwd",
                f"KEEP hostile={results(var.STATUS, var.READY)}",
                "Answer()",
                "Wait(10)",
            ]
        },
    )
    call(running, "5550106")
    (record,) = running.finished()
    values = kept(running)
    assert values["current"] == f"ok/1/{record['id']}/Google Ads"
    assert values["more"] == "returning/20/1"
    assert values["given"] == f"ok/{record['id']}"
    assert values["unknown"] == "no-call/" and values["hostile"] == "bad-call-id/"


def test_agi_route_gives_the_dialplan_a_destination_it_dials_itself(running: Stack, phone):
    carrier = phone()
    spring = running.query("SELECT id FROM routes WHERE name = 'Spring flyer'")[0]["id"]
    install(
        running,
        {
            "5550107": [
                "AGI route,12025550123 OR 1",
                f"KEEP refused={results(var.STATUS, var.READY, var.DIAL)}",
                "AGI track",
                f"AGI route,{TRACKED}",
                f"KEEP routed={results(var.STATUS, var.CONNECT, var.RING_TIMEOUT)}",
                f"KEEP after_hours=${{{var.AFTER_HOURS}}}",
                f'GotoIf($["${{{var.READY}}}" != "1"]?end)',
                f"Dial(${{{var.DIAL}}},${{{var.RING_TIMEOUT}}})",
                "(end)Hangup()",
            ]
        },
    )
    call(running, "5550107")
    (record,) = running.finished()
    values = kept(running)
    assert values["refused"] == "bad-number//"
    assert values["routed"] == f"ok/{spring}/3" and values["after_hours"] == ""
    assert invited(carrier.trace) == ["+12025550199"]
    assert record["answered_at"] is not None and record["disposition"] == "answered"
