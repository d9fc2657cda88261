from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.harness import Stack, asterisk_root, free_port, sipp_phone, wait_for

TRUNK_PORT_ENV = "APPLIANCE_TEST_TRUNK_PORT"


@pytest.fixture
def stack(tmp_path: Path):
    """An initialised appliance (data dir, database, secrets) with nothing running yet."""
    s = Stack(data_dir=tmp_path / "data", root=asterisk_root())
    s.appliance("init")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def running(stack: Stack):
    """Asterisk and the controller running, with a carrier trunk whose far end is a SIPp phone
    and a tracking number +12025550123 whose route forwards to +12025550199 over it."""
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    forward = ("--forward", "+12025550199", "--trunk", "carrier", "--ring-timeout", "3")
    stack.appliance("route", "add", "Spring flyer", *forward)
    stack.appliance("route", "add", "Default desk", *forward, "--default")
    number = ("+12025550123", "--label", "Spring flyer", "--source", "Google Ads")
    stack.appliance("number", "add", *number, "--route", "Spring flyer")
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    return stack


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (scripts/test installs it)")
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback, for the whole session, removed afterwards."""
    bindir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
    port = free_port()
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(base, user=pwd.getpwnam(user).pw_uid)

    def run(*argv: str) -> None:
        command = ["runuser", "-u", user, "--", *argv] if user else list(argv)
        subprocess.run(command, check=True, capture_output=True, cwd=base)

    run(
        str(bindir / "initdb"),
        "-D",
        str(base / "data"),
        "-U",
        "appliance",
        "--auth=trust",
        "-E",
        "UTF8",
    )
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(base / "data"),
        "-l",
        str(base / "log"),
        "-w",
        "start",
        "-o",
        f"-h 127.0.0.1 -p {port} -k {base} -F",
    )
    try:
        url = f"postgresql+psycopg://appliance@127.0.0.1:{port}/postgres"
        yield url
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def phone(stack: Stack):
    """Start a SIPp business phone that answers `calls` calls; stopped at teardown."""
    started = []

    def start(calls: int = 1, scenario: str = "phone_answer.xml", port: int | None = None):
        port = port or stack.phone_port
        trace = stack.data_dir / f"phone-{port}-{len(started)}.log"
        proc = sipp_phone(port, scenario, calls, cwd=stack.data_dir, trace=trace)
        proc.trace = trace
        started.append(proc)
        wait_for(lambda: _udp_bound(port), what="SIPp phone to listen")
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _udp_bound(port: int) -> bool:
    out = subprocess.run(["ss", "-lun"], capture_output=True, text=True).stdout
    return f"127.0.0.1:{port} " in out
