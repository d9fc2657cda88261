"""The controller against the real sandbox Asterisk, with SIPp as carrier and business phone."""

from __future__ import annotations

import socket

from tests.harness import Stack, sipp_call, wait_for


def test_call_to_tracking_number_reaches_controller_and_is_recorded(running: Stack, phone):
    phone_proc = phone()
    result = sipp_call(
        running, "12025550123", caller="13125550111", caller_name="Jane <b>Doe</b>", talk_ms=500
    )
    assert result.returncode == 0, result.output
    assert phone_proc.wait(10) == 0, "the business phone did not get the forwarded call"

    (call,) = running.finished()
    assert call["dialled"] == "+12025550123"
    assert call["caller_number"] == "13125550111"
    assert call["caller_name"] == "Jane <b>Doe</b>"
    assert call["tracking_number_id"] is not None
    assert call["route_name"] == "Spring flyer"
    assert call["linkedid"] and call["via"] == "live"


def test_health_and_doctor_report_a_working_stack(running: Stack):
    health = running.health()
    assert health["status"] == "ok"
    assert health["checks"] == {"ami": True, "database": True, "recordings": True, "routes": True}
    assert health["counters"]["ami_logins"] == 1 and health["counters"]["ami_impostors"] == 0
    doctor = running.appliance("doctor")
    assert "all checks passed" in doctor.stdout
    assert "[  ok] AMI login" in doctor.stdout
    # no speech model here: a warning that says what to do, never a failure
    assert "[warn] transcription: off: no model is installed" in doctor.stdout
    assert "fix: appliance models install NAME (or an archive): the workers start" in doctor.stdout


def test_sigterm_shuts_the_controller_down_cleanly(running: Stack):
    controller = running.processes[-1]
    assert running.stop(controller) == 0
    assert "controller stopping" in running.controller_log()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", running.agi_port)) != 0


def test_ami_reconnects_with_backoff_when_asterisk_comes_back(stack: Stack):
    stack.appliance("config", "render")
    stack.start_controller(wait_ami=False)
    assert stack.health()["checks"]["ami"] is False
    assert stack.health()["checks"]["routes"] is True  # compiled even with Asterisk away
    doctor = stack.appliance("doctor", check=False)
    assert doctor.returncode == 1
    assert f"AMI 127.0.0.1:{stack.ami_port} unreachable" in doctor.stdout
    assert "fix: start Asterisk" in doctor.stdout

    stack.start_asterisk()
    wait_for(lambda: stack.counter("ami_logins") == 1, timeout=15, what="AMI to connect")
    assert stack.health()["checks"]["ami"] is True


def test_wrong_ami_secret_is_a_clear_error(stack: Stack):
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.extra_env["APPLIANCE_AMI_SECRET"] = "not-the-secret"
    doctor = stack.appliance("doctor", check=False)
    assert doctor.returncode == 1
    assert "AMI login: refused" in doctor.stdout
    serve = stack.appliance("serve", check=False, own_process=True)  # it renices itself
    assert serve.returncode == 3
    assert "AMI login refused for user 'appliance'" in serve.stderr
    assert "Traceback" not in serve.stderr


def test_port_in_use_is_a_clear_error_and_leaves_nothing_listening(stack: Stack):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", stack.http_port))
        blocker.listen()
        serve = stack.appliance("serve", check=False, own_process=True)  # it renices itself
    assert serve.returncode == 2
    assert f"http.port: port {stack.http_port} on 127.0.0.1 is already in use" in serve.stderr
    assert "Traceback" not in serve.stderr
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", stack.agi_port)) != 0
