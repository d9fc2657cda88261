from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness import Stack, asterisk_root, sipp_phone, wait_for
from tests.postgres_server import temporary_server

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


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on loopback, for the whole session, removed afterwards."""
    with temporary_server() as url:
        yield url


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
