"""The integrator AGI scripts from a dialplan the appliance did not write: a context in
extensions_local.conf runs them during real SIPp calls through the real Asterisk, keeps what
they set in AstDB (read back with `database show`), and the call's record shows the rest."""

from __future__ import annotations

import re

import pytest

from appliance.calls import variables as var
from tests.harness import Stack, invited, sipp_call, wait_for

pytestmark = pytest.mark.integration
CALLER = "13125550111"
TRACKED = "+12025550123"  # the `running` fixture's tracking number (source Google Ads)
CONTEXT = "integrator-test"


def results(*names: str) -> str:
    """A dialplan value holding what the last script set, '/' between."""
    return "/".join(f"${{{name}}}" for name in names)


def steps(agi: str, *commands: str) -> str:
    """One extension of the test context: each command is a dialplan step; 'AGI ...' runs a
    script at the controller, 'KEEP key=value' stores a value in AstDB (family agi)."""
    lines = []
    for command in commands:
        if command.startswith("AGI "):
            lines.append(f"AGI({agi}/{command[4:]})")
        elif command.startswith("KEEP "):
            key, value = command[5:].split("=", 1)
            lines.append(f"Set(DB(agi/{key})={value})")
        else:
            lines.append(command)
    return "\n".join(f" same => n,{line}" for line in lines)


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
