"""Fixtures every test may use, and the tiers by cost.

A test's tier comes from the fixtures it uses, never from a mark written by hand: the fixtures
that give a test something costly say so (@costs in tests/harness.py): whatever starts Asterisk
needs a Stack, a browser needs `browser`, a booted Debian needs `server`, a network namespace
needs `netns`. `scripts/test --fast` runs the tiers below `asterisk`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.harness import TIERS, Stack, asterisk_root, costs, sipp_phone, wait_for
from tests.postgres_server import temporary_server

TRUNK_PORT_ENV = "APPLIANCE_TEST_TRUNK_PORT"

FAST = ("pure", "web", "postgres")  # scripts/test --fast: no Asterisk, Chromium or container


def tier_of(item: pytest.Item) -> str:
    """The costliest tier of the fixtures the test uses (see harness.costs)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    used = {getattr(defs[-1].func, "tier", "pure") for defs in definitions if defs}
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in callspec.params.values():
        used.add("postgres")  # the PostgreSQL side of a fixture parametrised by database
    return max(used, key=TIERS.index, default="pure")


def pytest_configure(config: pytest.Config) -> None:
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: tier by cost, set from the fixtures used")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item))


@pytest.fixture
@costs("asterisk")
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
    return stack.start_running()


@pytest.fixture(scope="module")
@costs("asterisk")
def module_stack(tmp_path_factory):
    """One `running` stack for all the tests of a module, so that Asterisk boots once per
    module. A module opts in by giving its tests this stack as `stack`, reset() between tests:

        @pytest.fixture
        def stack(module_stack):
            return module_stack.reset()

    and keeps in a module of its own the tests that stop, restart or reconfigure processes."""
    s = Stack(data_dir=tmp_path_factory.mktemp("module") / "data", root=asterisk_root())
    s.appliance("init")
    try:
        yield s.start_running().share()
    finally:
        s.close()


@pytest.fixture(scope="session")
@costs("postgres")
def postgres_url():
    """A real PostgreSQL server on loopback, for the whole session, removed afterwards."""
    with temporary_server() as url:
        yield url


@pytest.fixture
def cheap_passwords(monkeypatch):
    """Passwords stored at bcrypt's lowest cost, for tests that make users only as set-up (one
    check at the real cost takes a quarter of a second; test_secrets pins that cost)."""
    from appliance import secrets

    monkeypatch.setattr(secrets, "BCRYPT_COST", 4)


@pytest.fixture
def phone(stack: Stack):
    """Start a SIPp business phone that answers `calls` calls; stopped at teardown."""
    started = []

    def start(calls: int = 1, scenario: str = "phone_answer.xml", port: int | None = None):
        port = port or stack.phone_port
        trace = stack.data_dir / f"phone-{port}-{uuid.uuid4().hex[:8]}.log"
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


@pytest.fixture
@costs("netns")
def netns():
    """Wraps a command so that it runs in a network namespace of its own, after `setup` (a
    shell script ending in `exec "$@"`): its own loopback, its own sysctls, this machine's
    network untouched."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("network namespaces need root and unshare (util-linux)")

    def isolated(setup: str, *argv: str) -> list[str]:
        return ["unshare", "--net", "--", "sh", "-c", setup, "sh", *argv]

    return isolated
