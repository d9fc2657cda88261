"""scripts/install on a booted Debian 12 server (systemd-nspawn): refusals that change
nothing, the install as system services, a real call through it, an upgrade in place during
a call, an upgrade that fails and leaves the old version running, and the uninstall.

The tests run in file order against one server, as an admin would use it."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.container import Server
from tests.harness import (
    REPO,
    asterisk_root,
    carrier_command,
    costs,
    fetch_health,
    free_port,
    low_ports_open_to_all,
    privileged_port,
    sipp_phone,
    wait_for,
)
from tests.integration.test_recordings import speech

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-nspawn") is None or shutil.which("debootstrap") is None,
    reason="needs systemd-nspawn and debootstrap (scripts/test installs them)",
)

SOURCE = "/root/appliance-src"  # the checkout, as copied into the server
NUMBER = "+12025550123"
ASTERISK_ROOT = "/opt/appliance/asterisk-root"
SPOOL = f"{ASTERISK_ROOT}/var/spool/appliance-recordings"


class Ports:
    def __init__(self) -> None:
        self.http = free_port()
        self.tracking = free_port()
        self.ami = free_port()
        self.agi = privileged_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)  # the name carrier_command reads
        self.phone = free_port(socket.SOCK_DGRAM)


def copy_checkout(server: Server, version: str | None = None) -> None:
    """The checkout's files as an admin would unpack them (no .git, venv or data)."""
    target = server.path(SOURCE)
    shutil.rmtree(target, ignore_errors=True)
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    if version:
        init = target / "appliance" / "__init__.py"
        init.write_text(
            re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text())
        )


def settings(ports: Ports) -> str:
    """The admin's /etc/appliance/appliance.ini: the shipped one on this test's free ports,
    on loopback only (the server shares the host's network)."""
    text = (REPO / "systemd" / "appliance.ini").read_text()
    text = text.replace("host = 0.0.0.0", "host = 127.0.0.1")
    text = text.replace("sip_host = 0.0.0.0", "sip_host = 127.0.0.1")
    text = text.replace("port = 8443", f"port = {ports.http}")
    text = text.replace("port = 8444", f"port = {ports.tracking}")
    text = text.replace("sip_port = 5060", f"sip_port = {ports.sip_port}")
    text = text.replace("[asterisk]\n", "[asterisk]\nrtp_start = 33000\nrtp_end = 33999\n")
    text += f"\n[ami]\nport = {ports.ami}\n\n[agi]\nport = {ports.agi}\n"
    if low_ports_open_to_all(ports.agi):  # the server shares this machine's network
        text += "allow_unprivileged_ports = true\n"
    return text


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports()


@pytest.fixture(scope="module")
@costs("nspawn")
def server(tmp_path_factory, ports):
    name = f"appliance-{uuid.uuid4().hex[:6]}"
    server = Server(Path("/var/tmp") / name, name)
    try:
        server.prepare()
        # A cached Asterisk root, as scripts/install would have built (debootstrap, minutes).
        sandbox = asterisk_root()
        if sandbox != Path("/"):
            root = server.path(ASTERISK_ROOT)
            root.mkdir(parents=True)
            subprocess.run(["cp", "-a", "--reflink=auto", f"{sandbox}/.", str(root)], check=True)
        server.path("/etc/appliance").mkdir()
        server.path("/etc/appliance/appliance.ini").write_text(settings(ports))
        copy_checkout(server)
        server.boot()
        yield server
    finally:
        server.shutdown()
        server.remove()


def install(server: Server, *args: str, env: dict | None = None):
    return server.run(f"{SOURCE}/scripts/install", *args, env=env, timeout=1200)


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def install_after(server: Server, mount: str):
    """scripts/install in a mount namespace of its own, after `mount` changed what it sees."""
    script = f"{mount} && exec {SOURCE}/scripts/install"
    return server.run("unshare", "-m", "sh", "-c", script)


def test_install_refuses_an_unsupported_system_and_changes_nothing(server):
    fake = "/root/os-release"
    server.path(fake).write_text('ID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40"\n')
    result = install_after(server, f"mount --bind {fake} /etc/os-release")
    assert result.returncode == 1
    assert last_line(result) == (
        "error: unsupported system: Fedora Linux 40 (supported: Debian 12, Ubuntu 24.04)"
    )
    assert not server.path("/opt/appliance/releases").exists()


def test_install_refuses_a_disk_without_room_and_changes_nothing(server):
    result = install_after(server, "mount -t tmpfs -o size=100m small /opt")
    assert result.returncode == 1
    assert last_line(result) == (
        "error: not enough disk space: 100 MB free in /opt, 2500 MB needed"
    )
    assert not server.path("/opt/appliance/releases").exists()


def test_install_refuses_a_port_another_program_holds(server, ports):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.http))
        squatter.listen()
        result = install(server)
    assert result.returncode == 1, result.stdout + result.stderr
    assert last_line(result).startswith(f"error: port {ports.http}/tcp is already in use")
    assert server.run("getent", "passwd", "appliance").returncode == 2  # nothing half-installed
    assert not server.path("/opt/appliance/current").exists()
    assert not server.path("/etc/systemd/system/appliance.service").exists()
    assert list(server.path("/opt/appliance/releases").iterdir()) == []


@pytest.fixture(scope="module")
def installed(server):
    result = install(server)
    assert result.returncode == 0, result.stdout + result.stderr + server.journal()
    return result


def test_install_runs_the_appliance_as_system_services(server, installed, ports):
    output = installed.stdout + installed.stderr
    assert re.search(r"one-time password: \S+", output)
    assert "admin UI: https://127.0.0.1:" in output
    assert server.run("systemctl", "is-system-running").stdout.strip() == "running", server.run(
        "systemctl", "--failed"
    ).stdout
    units = ("asterisk", "appliance", "appliance-tracking", "appliance-transcriber")
    for unit in units:
        assert server.run("systemctl", "is-active", unit).stdout.strip() == "active", unit
    users = {
        unit: server.run("systemctl", "show", "-p", "User", "--value", unit).stdout.strip()
        for unit in units
    }
    assert users == {
        "asterisk": "asterisk",
        "appliance": "appliance",
        "appliance-tracking": "appliance",
        "appliance-transcriber": "appliance",
    }
    # Asterisk's group (its config, calls in progress): the controller's alone, never the
    # tracking listener's or the transcription workers', though all run as the appliance user.
    asterisk_gid = server.run("getent", "group", "asterisk").stdout.split(":")[2]
    groups = {unit: process_groups(server, unit) for unit in units[1:]}
    assert asterisk_gid in groups["appliance"]
    assert asterisk_gid not in groups["appliance-tracking"]
    assert asterisk_gid not in groups["appliance-transcriber"]
    # what the public listener sees of the secrets and recordings, though it runs as their
    # owner: nothing (the files are there for the controller)
    pid = server.run("systemctl", "show", "-p", "MainPID", "--value", "appliance-tracking")
    for folder in ("/var/lib/appliance/secrets", "/var/lib/appliance/recordings"):
        assert server.run("ls", "-A", folder).stdout.strip() or folder.endswith("recordings")
        seen = server.run("nsenter", "-t", pid.stdout.strip(), "-m", "ls", "-A", folder)
        assert not seen.stdout.strip(), (folder, seen.stdout)
    mount = server.run("findmnt", "-n", "-o", "FSTYPE,OPTIONS", SPOOL).stdout
    assert mount.startswith("tmpfs") and "mode=770" in mount
    rotation = server.run("logrotate", "--debug", "/etc/logrotate.d/appliance")
    assert rotation.returncode == 0 and "messages.log" in rotation.stderr, rotation.stderr
    doctor = server.run("appliance", "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "[  ok] services: asterisk active, appliance active" in doctor.stdout
    assert "[  ok] tracking listener: " in doctor.stdout
    assert "[  ok] modes: /etc/appliance root's and private" in doctor.stdout
    # only root may take the FastAGI port while the controller is down (a container takes its
    # host's value: the file is there for a server of its own)
    sysctl = server.path("/etc/sysctl.d/90-appliance.conf").read_text()
    assert "\nnet.ipv4.ip_unprivileged_port_start = 1024\n" in sysctl
    uid = server.run("id", "-u", "appliance").stdout.strip()
    assert f"[  ok] FastAGI: 127.0.0.1:{ports.agi} is listening (uid {uid})" in doctor.stdout


def test_doctor_says_what_to_fix_on_the_server(server, installed):
    ini = "/etc/appliance/appliance.ini"
    server.run("chmod", "0644", ini, check=True)
    server.run("systemctl", "stop", "appliance-transcriber", check=True)
    try:
        doctor = server.run("appliance", "doctor")
    finally:
        server.run("chmod", "0640", ini, check=True)
        server.run("systemctl", "start", "appliance-transcriber", check=True)
    assert doctor.returncode == 1
    assert f"[FAIL] modes: {ini} is readable by others" in doctor.stdout
    assert f"fix: chown root:appliance {ini}; chmod 0640 {ini}" in doctor.stdout
    assert "[warn] services: appliance-transcriber is inactive" in doctor.stdout


def process_groups(server: Server, unit: str) -> list[str]:
    """The supplementary groups of a unit's main process, as the server's kernel reports them."""
    pid = server.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
    found = server.run("grep", "^Groups:", f"/proc/{pid}/status", check=True).stdout
    return found.split()[1:]


def test_hardened_units_measured_inside_the_server(server, installed):
    limits = {
        "appliance": 2.5,
        "appliance-tracking": 2.5,
        "appliance-transcriber": 2.5,
        "asterisk": 5.0,
    }
    for unit, limit in limits.items():
        report = server.run("systemd-analyze", "security", unit).stdout
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", report)
        assert found and float(found.group(1)) <= limit, (unit, report[-400:])


PROBE = """
import errno, json, os, subprocess, sys
def outcome(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
def create(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.unlink(path)
locked = (
    "import errno, os\\n"
    "from appliance.transcription import sandbox\\n"
    "sandbox.lock()\\n"
    "try: os.open('/var/lib/appliance/appliance.db', os.O_RDWR); print('done')\\n"
    "except OSError as exc: print(errno.errorcode[exc.errno])"
)
found = subprocess.run([sys.executable, "-c", locked], capture_output=True, text=True)
result = {
    "recordings": outcome(lambda: create("/var/lib/appliance/recordings/.probe")),
    "models": outcome(lambda: create("/var/lib/appliance/models/.probe")),
    "database": outcome(lambda: create("/var/lib/appliance/.probe")),
    "locked decoder": found.stdout.strip() or found.stderr[-300:],
}
with open("/var/lib/appliance/probe.json", "w") as out:
    json.dump(result, out)
"""


def probe_as_transcriber(server: Server, *drop_in: str) -> dict:
    """What a process of the transcriber's unit (its sandbox, its user) may write, and what
    a decoder locked inside it may: the unit's file with a probe for ExecStart, and the lines
    of `drop_in` in a drop-in."""
    unit = server.path("/etc/systemd/system/appliance-transcriber.service").read_text()
    command = server.path("/opt/appliance/bin/appliance").read_text().splitlines()[0]
    python = command.removeprefix("#!").strip()  # the release's own, as the service runs it
    lines = [line for line in unit.splitlines() if not line.startswith(("Restart", "Type="))]
    lines = [
        f"ExecStart={python} /usr/local/lib/appliance-probe.py\nType=oneshot"
        if line.startswith("ExecStart=") else line
        for line in lines
    ]  # fmt: skip
    server.path("/usr/local/lib/appliance-probe.py").write_text(PROBE)
    server.path("/etc/systemd/system/appliance-probe.service").write_text("\n".join(lines))
    drop_ins = server.path("/etc/systemd/system/appliance-probe.service.d")
    shutil.rmtree(drop_ins, ignore_errors=True)
    if drop_in:
        drop_ins.mkdir()
        (drop_ins / "admin.conf").write_text("\n".join(["[Service]", *drop_in]) + "\n")
    result = server.path("/var/lib/appliance/probe.json")
    try:
        server.run("systemctl", "daemon-reload", check=True)
        started = server.run("systemctl", "start", "appliance-probe")
        assert started.returncode == 0, server.journal("appliance-probe")
        return json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)
        server.path("/etc/systemd/system/appliance-probe.service").unlink()
        shutil.rmtree(drop_ins, ignore_errors=True)
        server.run("systemctl", "daemon-reload", check=True)


def test_the_transcription_workers_write_the_database_and_their_decoder_nothing(server, installed):
    assert probe_as_transcriber(server) == {
        "recordings": "EROFS",  # made by appliance init, so that the unit can close them
        "models": "EROFS",
        "database": "done",
        "locked decoder": "EPERM",  # seccomp() is not in the unit's filter: prctl sets it
    }
    # with transcription.redact_audio, the drop-in the admin guide gives
    given = probe_as_transcriber(
        server,
        "ReadOnlyPaths=",
        "ReadOnlyPaths=-/var/lib/appliance/secrets -/var/lib/appliance/models",
    )
    assert given == {"recordings": "done", "models": "EROFS", "database": "done",
                     "locked decoder": "EPERM"}  # fmt: skip


def health(server: Server, ports: Ports, token: str) -> dict:
    certificate = server.path("/var/lib/appliance/tls/cert.pem")
    return fetch_health(ports.http, certificate, token) or {}


def calls(server: Server) -> list[sqlite3.Row]:
    database = server.path("/var/lib/appliance/appliance.db")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return db.execute(
            "SELECT c.*, r.call_id AS recording FROM calls c LEFT JOIN recordings r"
            " ON r.call_id = c.id ORDER BY c.started_at"
        ).fetchall()


@pytest.fixture(scope="module")
def token(server, installed) -> str:
    made = server.run("appliance", "apikey", "add", "admin", "--scope", "config:read", check=True)
    return made.stdout.rsplit(" ", 1)[1].strip()


@pytest.fixture(scope="module")
def recorded_number(server, ports, installed, token):
    reloads = health(server, ports, token)["counters"]["dialplan_reloads"]
    for argv in (
        ("trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(ports.phone)),
        (
            "route",
            "add",
            "Clinic",
            "--forward",
            "+12025550199",
            "--trunk",
            "carrier",
            "--record",
            "always",
        ),
        ("number", "add", NUMBER, "--route", "Clinic"),
    ):
        server.run("appliance", *argv, check=True)
    wait_for(
        lambda: health(server, ports, token)["counters"]["dialplan_reloads"] > reloads,
        timeout=20,
        what="the route in the server's Asterisk",
    )
    return NUMBER


def call(ports: Ports, talk_ms: int, cwd: Path) -> subprocess.Popen:
    """A call with speech both ways, from a SIPp carrier to a SIPp phone through the server."""
    speech(cwd)
    phone = sipp_phone(ports.phone, "phone_speech.xml", cwd=cwd, timeout_s=60 + talk_ms // 1000)
    command = carrier_command(
        ports, NUMBER.lstrip("+"), "13125550111", "Jane", talk_ms, scenario="carrier_speech.xml"
    )
    carrier = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    carrier.phone = phone  # type: ignore[attr-defined]
    return carrier


def finished(carrier: subprocess.Popen, timeout: float = 90) -> int:
    code = carrier.wait(timeout)
    carrier.phone.wait(30)  # type: ignore[attr-defined]
    return code


def exported_audio(server: Server, call_id: str) -> int:
    """Bytes of audio in the recording exported through the installed command line."""
    out = f"/var/tmp/{call_id}.wav"
    server.run("appliance", "recordings", "export", call_id, out, check=True)
    size = server.path(out).stat().st_size
    server.path(out).unlink()
    return size


def test_a_call_into_the_installed_appliance_is_recorded_and_sealed(
    server, ports, recorded_number, tmp_path
):
    assert finished(call(ports, 3000, tmp_path)) == 0
    (row,) = wait_for(
        lambda: [r for r in calls(server) if r["disposition"] and r["recording"]],
        timeout=30,
        what="the call and its sealed recording",
    )
    assert row["disposition"] == "answered" and row["caller_number"] == "13125550111"
    assert exported_audio(server, row["id"]) > 8000 * 2  # more than a second of audio
    assert (
        list(server.path("/opt/appliance/asterisk-root/var/spool/appliance-recordings").iterdir())
        == []
    )


def test_upgrade_in_place_keeps_data_and_the_call_in_progress(
    server, ports, recorded_number, tmp_path
):
    before = calls(server)
    release = server.path("/opt/appliance/current").readlink()
    settings_before = server.path("/etc/appliance/appliance.ini").read_bytes()
    live = call(ports, 90000, tmp_path)  # outlasts the upgrade (a new venv) on a loaded machine
    wait_for(lambda: len(calls(server)) > len(before), timeout=20, what="the live call's record")
    copy_checkout(server, version="0.1.0+upgraded")
    result = install(server)
    assert result.returncode == 0, result.stdout + result.stderr + server.journal("appliance")
    assert live.poll() is None, "the upgrade outlasted the call: make the call longer"
    assert finished(live, timeout=180) == 0  # the call went on, from answer to the caller's hang-up
    assert server.path("/opt/appliance/current").readlink() != release
    version = server.run("appliance", "--version").stdout.strip()
    assert version == "appliance 0.1.0+upgraded"
    assert server.path("/etc/appliance/appliance.ini").read_bytes() == settings_before

    def all_recorded():
        rows = calls(server)
        return rows if all(r["disposition"] and r["recording"] for r in rows) else None

    rows = wait_for(
        all_recorded,
        timeout=120,  # the live call is reconciled from Asterisk's CDR (every 60 s)
        what="both calls recorded after the upgrade",
    )
    assert len(rows) == len(before) + 1
    assert rows[-1]["talk_seconds"] >= 85
    for row in rows:
        assert exported_audio(server, row["id"]) > 0  # keys kept: every recording plays


def test_an_upgrade_whose_controller_fails_goes_back_to_the_previous_release(server):
    release = server.path("/opt/appliance/current").readlink()
    before = calls(server)
    copy_checkout(server, version="0.1.0+broken")
    controller = server.path(f"{SOURCE}/appliance/controller.py")
    with controller.open("a") as source:  # a release whose controller exits at once
        source.write("\n\nasync def serve(config):\n    raise SystemExit(1)\n")
    result = install(server)
    assert result.returncode == 1
    assert re.fullmatch(
        r"error: the controller did not start \(journalctl -u appliance\); "
        r"the previous release \(\S+\) runs again",
        last_line(result),
    ), result.stderr
    assert server.path("/opt/appliance/current").readlink() == release
    assert server.run("appliance", "--version").stdout.strip() == "appliance 0.1.0+upgraded"
    assert server.run("systemctl", "is-active", "appliance").stdout.strip() == "active"
    assert [r["id"] for r in calls(server)] == [r["id"] for r in before]
    assert not server.path("/var/lib/appliance/.pre-upgrade.db").exists()


def main_pid(server: Server) -> str:
    return server.run("systemctl", "show", "-p", "MainPID", "--value", "appliance").stdout


def test_a_failed_upgrade_leaves_the_old_version_running(server):
    release = server.path("/opt/appliance/current").readlink()
    controller = main_pid(server)
    unreachable = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0"}
    result = install(server, env=unreachable)
    assert result.returncode == 1
    assert last_line(result).startswith("error: pip cannot reach the package index")
    assert server.path("/opt/appliance/current").readlink() == release
    assert (
        server.run("systemctl", "show", "-p", "MainPID", "--value", "appliance").stdout
        == controller
    )
    assert len(list(server.path("/opt/appliance/releases").iterdir())) <= 2


def test_uninstall_keeps_the_data_and_purge_removes_it(server):
    result = install(server, "--uninstall")
    assert result.returncode == 0, result.stderr
    assert server.run("systemctl", "is-active", "appliance").stdout.strip() == "inactive"
    assert not server.path("/opt/appliance").exists()
    assert not server.path("/etc/systemd/system/appliance.service").exists()
    assert not server.path("/etc/sysctl.d/90-appliance.conf").exists()
    assert server.path("/var/lib/appliance/appliance.db").exists()
    assert server.path("/etc/appliance/appliance.ini").exists()
    result = install(server, "--uninstall", "--purge")
    assert result.returncode == 0, result.stderr
    assert not server.path("/var/lib/appliance").exists()
    assert not server.path("/etc/appliance").exists()
    assert server.run("getent", "passwd", "appliance").returncode == 2
