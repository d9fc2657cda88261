"""The controller against the real sandbox Asterisk, with SIPp as carrier and business phone."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from tests.harness import Stack, sipp_call, wait_for

pytestmark = pytest.mark.integration


def calls(stack: Stack) -> list[sqlite3.Row]:
    with sqlite3.connect(stack.database) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM calls ORDER BY started_at").fetchall()


def test_call_to_tracking_number_reaches_controller_and_is_recorded(running: Stack, phone):
    phone_proc = phone()
    result = sipp_call(
        running, "12025550123", caller="13125550111", caller_name="Jane <b>Doe</b>", talk_ms=500
    )
    assert result.returncode == 0, result.output
    assert phone_proc.wait(10) == 0, "the business phone did not get the forwarded call"

    (call,) = calls(running)
    assert call["dialled"] == "12025550123"
    assert call["caller_number"] == "13125550111"
    assert call["caller_name"] == "Jane <b>Doe</b>"
    assert call["tracking_number_id"] is not None
    assert call["route_name"] == "Spring flyer"
    assert call["linkedid"]
    assert "call " + call["id"] in running.controller_log()


def test_health_and_doctor_report_a_working_stack(running: Stack):
    health = running.health()
    assert health == {
        "status": "ok",
        "version": health["version"],
        "checks": {"ami": True, "database": True, "recordings": True},
    }
    doctor = running.appliance("doctor")
    assert "all checks passed" in doctor.stdout
    assert "[  ok] AMI login" in doctor.stdout


def test_sigterm_shuts_the_controller_down_cleanly(running: Stack):
    controller = running.processes[-1]
    assert running.stop(controller) == 0
    assert "controller stopping" in running.controller_log()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", running.agi_port)) != 0


def test_ami_reconnects_with_backoff_when_asterisk_comes_back(stack: Stack):
    stack.appliance("config", "render")
    stack.start_controller(wait_ami=False)
    wait_for(lambda: "unreachable" in stack.controller_log(), what="unreachable warning")
    assert stack.health()["checks"]["ami"] is False
    doctor = stack.appliance("doctor", check=False)
    assert doctor.returncode == 1
    assert f"AMI 127.0.0.1:{stack.ami_port} unreachable" in doctor.stdout
    assert "fix: start Asterisk" in doctor.stdout

    stack.start_asterisk()
    wait_for(
        lambda: (stack.health() or {}).get("checks", {}).get("ami"),
        timeout=15,
        what="AMI to reconnect",
    )
    assert "AMI reconnected" in stack.controller_log()


def test_wrong_ami_secret_is_a_clear_error(stack: Stack):
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.extra_env["APPLIANCE_AMI_SECRET"] = "not-the-secret"
    doctor = stack.appliance("doctor", check=False)
    assert doctor.returncode == 1
    assert "AMI login: refused" in doctor.stdout
    serve = stack.appliance("serve", check=False)
    assert serve.returncode == 3
    assert "AMI login refused for user 'appliance'" in serve.stderr
    assert "Traceback" not in serve.stderr


def test_port_in_use_is_a_clear_error_and_leaves_nothing_listening(stack: Stack):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", stack.http_port))
        blocker.listen()
        serve = stack.appliance("serve", check=False)
    assert serve.returncode == 2
    assert f"http.port: port {stack.http_port} on 127.0.0.1 is already in use" in serve.stderr
    assert "Traceback" not in serve.stderr
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", stack.agi_port)) != 0
