"""Calls survive the controller or Asterisk stopping. Each test has a stack of its own: it
stops or restarts the stack's processes."""

from __future__ import annotations

from tests.harness import Stack, sipp_call, wait_for
from tests.integration.test_call_path import CALLER


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
