"""Loopback is not a credential: an unprivileged local user can impersonate neither side of
the controller's link with Asterisk, and the AMI user the controller holds can run nothing.
Where the kernel would let any user take the FastAGI port, the controller does not start and
the doctor says why; the doctor's own look at the port is no intrusion."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap

import pytest

from appliance import doctor
from appliance.config import load
from tests.harness import Stack, wait_for

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def running(module_stack: Stack) -> Stack:
    """One running stack for the module's attacks on a running appliance, reset between tests;
    the tests that stop or start processes take `stack`, a stack of their own."""
    return module_stack.reset()


def as_nobody(code: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """Run Python code as the unprivileged user nobody (the system's own Python)."""
    return subprocess.run(
        [*NOBODY, "/usr/bin/python3", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_forged_fastagi_request_from_another_user_gets_no_answer(running: Stack):
    refused, answered = running.counter("agi_refused"), running.counter("agi_answered")
    forged = as_nobody(
        f"""
        import socket
        s = socket.create_connection(("127.0.0.1", {running.agi_port}))
        s.sendall(b"agi_network_script: dynamic\\nagi_arg_1: 1\\nagi_arg_2: 1700000000.1\\n\\n")
        s.settimeout(5)
        try:
            print(repr(s.recv(1000)))
        except ConnectionResetError:  # closed unread: no answer either
            print(repr(b""))
        """
    )
    assert forged.returncode == 0, forged.stderr
    assert forged.stdout.strip() == "b''"
    assert running.counter("agi_refused") == refused + 1
    assert running.counter("agi_answered") == answered


# a network namespace of its own where, as in many containers, every user may listen on any
# port (the sysctl is per namespace: this machine's own value is left alone)
OPEN_LOW_PORTS = """
set -e
ip link set lo up
echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start
exec "$@"
"""


def where_low_ports_are_open(netns, stack: Stack, *argv: str, **env: str):
    return subprocess.run(
        netns(OPEN_LOW_PORTS, *argv),
        env={**stack.env, "APPLIANCE_AGI_ALLOW_UNPRIVILEGED_PORTS": "false", **env},
        capture_output=True,
        text=True,
        timeout=60,  # a controller that did not refuse would run on
    )


def test_the_controller_refuses_to_start_where_any_user_may_take_the_fastagi_port(
    stack: Stack, netns
):
    squat = where_low_ports_are_open(
        netns, stack, *NOBODY, "/usr/bin/python3", "-c",
        f"import socket; socket.socket().bind(('127.0.0.1', {stack.agi_port})); print('bound')",
    )  # fmt: skip
    assert squat.stdout.strip() == "bound", squat.stderr  # what the controller guards against
    served = where_low_ports_are_open(netns, stack, sys.executable, "-m", "appliance", "serve")
    assert served.returncode == 2, served.stdout + served.stderr
    assert "agi.port: net.ipv4.ip_unprivileged_port_start is 0" in served.stderr
    assert "/etc/sysctl.d/90-appliance.conf" in served.stderr
    checked = where_low_ports_are_open(netns, stack, sys.executable, "-m", "appliance", "doctor")
    assert checked.returncode == 1
    flagged = "[FAIL] FastAGI port guard: net.ipv4.ip_unprivileged_port_start is 0"
    assert flagged in checked.stdout, checked.stdout
    # told it is a test machine, it goes on (here to the next check: an empty database)
    allowed = where_low_ports_are_open(
        netns, stack, sys.executable, "-m", "appliance", "serve",
        APPLIANCE_AGI_ALLOW_UNPRIVILEGED_PORTS="true",
        APPLIANCE_DATABASE_URL=f"sqlite:///{stack.data_dir}/empty.db",
    )  # fmt: skip
    assert allowed.returncode == 2, allowed.stderr
    assert "database is not migrated" in allowed.stderr, allowed.stderr
    assert "started anyway: agi.allow_unprivileged_ports" in allowed.stderr


def test_the_doctor_checks_the_fastagi_port_without_counting_as_an_intrusion(running: Stack):
    """The doctor as a user the controller does not take FastAGI from (the appliance's own
    user, on a server): it reads who holds the port from the kernel and connects to nothing.
    A forged connection afterwards is the only refusal counted."""
    config = load(environ=running.env)
    refused = running.counter("agi_refused")
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            found = [f for f in doctor.findings(config) if f.check.startswith("FastAGI")]
            os.write(writer, json.dumps([dataclasses.asdict(f) for f in found]).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        found = {f["check"]: f for f in json.loads(pipe.read())}
    os.waitpid(child, 0)
    forged = as_nobody(
        f"""
        import socket
        s = socket.create_connection(("127.0.0.1", {running.agi_port}))
        s.settimeout(5)
        try:
            print(repr(s.recv(1)))
        except ConnectionResetError:  # closed unread
            print(repr(b""))
        """
    )  # held until the controller closed it: refused and counted by then
    assert forged.stdout.strip() == "b''", forged.stderr
    # connections are taken in order: none from the doctor before the forged one
    assert running.counter("agi_refused") == refused + 1
    assert found["FastAGI"]["status"] == "ok", found
    assert f"127.0.0.1:{running.agi_port} is listening (uid 0)" in found["FastAGI"]["detail"]
    assert found["FastAGI port guard"]["status"] == "ok", found


def test_the_fastagi_port_cannot_be_taken_while_the_controller_is_down(stack: Stack):
    running = stack.start_running()
    controller = running.processes.pop()
    running.stop(controller)
    squat = as_nobody(
        f"""
        import socket
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", {running.agi_port}))
        except PermissionError:
            print("refused")
        """
    )
    assert squat.stdout.strip() == "refused", squat.stderr


SQUATTER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
while True:
    peer, _ = server.accept()
    peer.sendall(b"Asterisk Call Manager/11.0.0\\r\\n")
    peer.settimeout(1)
    try:
        data = peer.recv(4096)
    except OSError:
        data = b""
    print(repr(data), flush=True)
    peer.close()
"""


def test_a_listener_squatting_the_ami_port_never_learns_the_secret(stack: Stack):
    """While Asterisk is down another user listens on the AMI port: the controller connects,
    sees the listener is not Asterisk's and sends nothing; once Asterisk is back it logs in."""
    secret = (stack.data_dir / "secrets" / "ami.secret").read_text().strip()
    squatter = subprocess.Popen(
        [*NOBODY, "/usr/bin/python3", "-c", SQUATTER, str(stack.ami_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        stack.appliance("config", "render")
        stack.start_controller(wait_ami=False)
        wait_for(lambda: stack.counter("ami_impostors") >= 2, timeout=15, what="two refusals")
        assert stack.health()["checks"]["ami"] is False
        doctor = stack.appliance("doctor", check=False)
        assert "not Asterisk: the secret was not sent" in doctor.stdout
    finally:
        squatter.kill()
        heard = squatter.communicate()[0]
    assert heard.count("b''") >= 3  # the controller twice, the doctor once: not a byte
    assert secret not in heard and "Login" not in heard
    stack.start_asterisk()
    wait_for(lambda: stack.counter("ami_logins") == 1, timeout=15, what="AMI login to Asterisk")


def ami_session(stack: Stack, *actions: dict[str, str]) -> list[str]:
    """Log in as the controller's AMI user and send `actions`; the response to each."""
    secret = (stack.data_dir / "secrets" / "ami.secret").read_text().strip()
    with socket.create_connection(("127.0.0.1", stack.ami_port), timeout=5) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        answers = []
        for action in ({"Action": "Login", "Username": "appliance", "Secret": secret}, *actions):
            lines = "".join(f"{k}: {v}\r\n" for k, v in action.items())
            sock.sendall((lines + "\r\n").encode())
            block = []
            while line := reader.readline().decode().strip():
                block.append(line)
            while block and not block[0].startswith("Response:"):  # an event: skip it
                block = []
                while line := reader.readline().decode().strip():
                    block.append(line)
            answers.append("\n".join(block))
    return answers[1:]


def test_the_ami_user_has_no_action_that_runs_commands(running: Stack):
    etc = running.asterisk_dir_on_host / "etc"
    before = (etc / "extensions.conf").read_bytes()
    answers = ami_session(
        running,
        {"Action": "Command", "Command": "core show version"},
        {"Action": "Originate", "Channel": "PJSIP/+19005550100@carrier", "Application": "Echo"},
        {"Action": "MixMonitor", "Channel": "x", "File": "/tmp/x.wav", "Command": "id"},
        {"Action": "ModuleLoad", "Module": "app_system.so", "LoadType": "load"},
        {"Action": "DBPut", "Family": "x", "Key": "y", "Val": "z"},
        {
            "Action": "UpdateConfig",
            "SrcFilename": "extensions.conf",
            "DstFilename": "extensions.conf",
            "Action-000000": "Append",
            "Cat-000000": "general",
            "Var-000000": "x",
            "Value-000000": "y",
        },
        {"Action": "Reload", "Module": "pbx_config"},
    )
    *refused, update, reload = answers
    assert all("Permission denied" in a for a in refused), refused
    assert "Response: Error" in update  # allowed by class, but the config is root's
    assert (etc / "extensions.conf").read_bytes() == before
    assert "Response: Success" in reload


def test_asterisk_cannot_change_its_own_config_or_run_programs(running: Stack):
    base = running.asterisk_dir_on_host
    etc = base / "etc"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750 and etc.stat().st_uid == 0
    for path in etc.iterdir():
        info = path.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o640), path
    routes = base / "routes" / "extensions_routes.conf"
    assert stat.S_IMODE(routes.stat().st_mode) == 0o640
    assert routes.stat().st_uid == running.data_dir.stat().st_uid
    group = etc.stat().st_gid
    assert routes.stat().st_gid == group
    as_asterisk = ["setpriv", "--reuid=asterisk", "--regid=asterisk", "--init-groups"]
    for target in (etc, etc / "asterisk.conf", routes, routes.parent):
        probe = subprocess.run([*as_asterisk, "test", "-w", str(target)])
        assert probe.returncode != 0, f"Asterisk's user may write {target}"
    modules = running.asterisk_cli("module show like app_system").stdout
    assert "0 modules loaded" in modules
    functions = running.asterisk_cli("core show function SHELL", check=False).stdout
    assert "No function by that name" in functions or "SHELL" not in functions
