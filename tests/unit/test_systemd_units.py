"""The production units keep their hardening: read the unit files, and when systemd-analyze is
there, score them offline the way `systemd-analyze security` does on a real install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTROLLER = REPO / "systemd" / "appliance.service"
TRANSCRIBER = REPO / "systemd" / "appliance-transcriber.service"
TRACKING = REPO / "systemd" / "appliance-tracking.service"
ASTERISK_DROP_IN = REPO / "systemd" / "asterisk.service.d" / "appliance.conf"
ASTERISK_PACKAGED = REPO / "systemd" / "asterisk.service.d" / "packaged.conf"
ASTERISK_OWN = REPO / "systemd" / "asterisk.service"
SANDBOX_ROOT = Path("/var/cache/appliance/sid-root")
CONFIG = "/var/lib/appliance-asterisk/etc/asterisk.conf"


def parse(*paths: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values, as systemd reads a unit and its drop-ins in order: keys
    repeat, and an empty value resets what came before (ExecStart=, CapabilityBoundingSet=)."""
    units: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for raw in "\n".join(path.read_text() for path in paths).splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = units.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        values = section.setdefault(key.strip(), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return units


def single(service: dict[str, list[str]], key: str) -> str:
    assert key in service, f"{key}= missing"
    return service[key][-1]


def words(service: dict[str, list[str]], key: str) -> set[str]:
    return {word for value in service.get(key, []) for word in value.split()}


@pytest.fixture(scope="module")
def controller() -> dict[str, list[str]]:
    return parse(CONTROLLER)["Service"]


@pytest.fixture(scope="module", params=["packaged", "own root"])
def asterisk(request) -> dict[str, list[str]]:
    """The distribution's unit with both drop-ins, or the appliance's own with the shared one."""
    if request.param == "packaged":
        return parse(ASTERISK_DROP_IN, ASTERISK_PACKAGED)["Service"]
    return parse(ASTERISK_OWN, ASTERISK_DROP_IN)["Service"]


def test_controller_speaks_sd_notify_with_a_watchdog(controller):
    assert single(controller, "Type") == "notify"
    assert single(controller, "NotifyAccess") == "main"
    assert single(controller, "WatchdogSec") == "10"
    assert single(controller, "Restart") == "on-failure"
    assert "2" in words(controller, "RestartPreventExitStatus")
    # Below Asterisk, set by systemd: the seccomp filter refuses the controller's own
    # setpriority() (@resources), which once stopped it from starting at all.
    assert single(controller, "Nice") == "10"


def test_controller_has_exactly_the_capability_to_bind_a_low_port(controller):
    assert words(controller, "CapabilityBoundingSet") == {"CAP_NET_BIND_SERVICE"}
    assert words(controller, "AmbientCapabilities") == {"CAP_NET_BIND_SERVICE"}
    assert single(controller, "NoNewPrivileges") == "yes"
    assert single(controller, "User") == "appliance"
    assert words(controller, "SupplementaryGroups") == {"asterisk"}


def test_controller_sandbox(controller):
    assert single(controller, "ProtectSystem") == "strict"
    assert words(controller, "ReadWritePaths") == {
        "-/run/appliance-recordings",
        "-/var/lib/appliance-asterisk/routes",
        "-/var/lib/appliance-asterisk/log/cdr-custom",
    }
    assert words(controller, "RestrictAddressFamilies") == {
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
        "AF_NETLINK",
    }
    assert "@system-service" in words(controller, "SystemCallFilter")
    for key in ("ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictNamespaces"):
        assert single(controller, key) == "yes", key
    assert single(controller, "UMask") == "0077"


def test_asterisk_runs_as_its_own_user_from_the_start(asterisk):
    assert single(asterisk, "User") == "asterisk"
    assert single(asterisk, "Group") == "asterisk"
    assert len(asterisk["ExecStart"]) == 1  # the packaged command line is reset, not added to
    argv = single(asterisk, "ExecStart").split()
    assert argv[0] == "/usr/sbin/asterisk"
    assert argv[argv.index("-C") + 1] == CONFIG
    options = "".join(a[1:] for a in argv if re.fullmatch(r"-[a-zA-Z]+", a))
    assert not set(options) & set("UGpg"), "no user switch, no real-time priority, no core dump"


def test_asterisk_files(asterisk):
    assert single(asterisk, "UMask") == "0027"
    assert single(asterisk, "LimitCORE") == "0"
    assert single(asterisk, "ProtectSystem") == "strict"
    root = single(asterisk, "RootDirectory") if "RootDirectory" in asterisk else ""
    assert f"{root}/var/lib/appliance-asterisk/etc" in words(asterisk, "ReadOnlyPaths")


def test_packaged_asterisk_keeps_its_spool_in_memory_across_restarts():
    service = parse(ASTERISK_DROP_IN, ASTERISK_PACKAGED)["Service"]
    assert single(service, "RuntimeDirectory") == "appliance-recordings"
    assert single(service, "RuntimeDirectoryMode") == "0770"
    assert single(service, "RuntimeDirectoryPreserve") == "yes"


def test_own_asterisk_runs_in_its_root_with_the_spool_mounted():
    unit = parse(ASTERISK_OWN, ASTERISK_DROP_IN)
    root = single(unit["Service"], "RootDirectory")
    assert root == "/opt/appliance/asterisk-root"
    spool = f"{root}/var/spool/appliance-recordings"
    assert single(unit["Unit"], "RequiresMountsFor") == spool
    assert spool in words(unit["Service"], "ReadWritePaths")


def test_asterisk_sandbox(asterisk):
    assert "CapabilityBoundingSet" in asterisk and asterisk["CapabilityBoundingSet"] == []
    for key in ("NoNewPrivileges", "RestrictRealtime", "PrivateTmp", "PrivateDevices"):
        assert single(asterisk, key) == "yes", key
    assert "@system-service" in words(asterisk, "SystemCallFilter")


def packaged_asterisk_unit() -> Path | None:
    roots = [os.environ.get("APPLIANCE_TEST_ASTERISK_ROOT", ""), str(SANDBOX_ROOT), "/"]
    for root in filter(None, roots):
        for relative in ("usr/lib/systemd/system", "lib/systemd/system"):
            unit = Path(root) / relative / "asterisk.service"
            if unit.is_file():
                return unit
    return None


def exposure(root: Path, unit: str) -> float:
    """Overall exposure from `systemd-analyze security --offline` on a root holding the unit."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "ignoring" not in result.stderr and "bad unit" not in result.stderr, result.stderr
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


@needs_analyze
def test_controller_exposure(tmp_path: Path):
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(CONTROLLER, units / "appliance.service")
    assert exposure(tmp_path, "appliance.service") <= 2.5


def test_transcription_workers_have_no_privilege_and_yield_to_calls():
    service = parse(TRANSCRIBER)["Service"]
    assert single(service, "ExecStart").split()[1:] == ["transcribe"]
    assert single(service, "User") == "appliance"
    assert service["CapabilityBoundingSet"] == [] and service["AmbientCapabilities"] == []
    assert "SupplementaryGroups" not in service  # no access to the plaintext spool
    assert "ReadWritePaths" not in service
    assert single(service, "KillMode") == "mixed"  # the parent stops its workers
    assert int(single(service, "Nice")) > 0
    assert single(service, "CPUSchedulingPolicy") == "batch"
    assert words(service, "RestrictAddressFamilies") == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert single(service, "IPAddressDeny") == "any"
    assert single(service, "IPAddressAllow") == "localhost"
    assert single(service, "LimitCORE") == "0"  # a core dump would hold plaintext audio
    assert {
        "-/var/lib/appliance/tls",
        "-/var/lib/appliance/secrets/ami.secret",
        "-/var/lib/appliance-asterisk",  # the AMI secret in manager.conf
        "-/run/appliance-recordings",  # calls in progress
    } <= words(service, "InaccessiblePaths")
    for key in ("ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateUsers", "NoNewPrivileges"):
        assert single(service, key) == "yes", key


def test_transcription_workers_write_the_database_only():
    """What they do not write is read-only (the database and its folder stay writable); the
    decoder that reads callers' audio locks itself further (tests/unit/test_decoder.py)."""
    service = parse(TRANSCRIBER)["Service"]
    assert single(service, "ProtectSystem") == "strict"
    assert {
        "-/var/lib/appliance/secrets",
        "-/var/lib/appliance/models",
        "-/var/lib/appliance/recordings",  # unless redact_audio: see the unit's comment
    } <= words(service, "ReadOnlyPaths")
    assert "-/var/lib/appliance/secrets/box.key" in words(service, "InaccessiblePaths")


@needs_analyze
def test_transcriber_exposure(tmp_path: Path):
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(TRANSCRIBER, units / "appliance-transcriber.service")
    assert exposure(tmp_path, "appliance-transcriber.service") <= 2.0


@needs_analyze
def test_asterisk_exposure_with_the_packaged_unit(tmp_path: Path):
    packaged = packaged_asterisk_unit()
    if packaged is None:
        pytest.skip("no packaged asterisk.service (scripts/asterisk-sandbox build)")
    vendor = tmp_path / "usr" / "lib" / "systemd" / "system"
    drop_ins = tmp_path / "etc" / "systemd" / "system" / "asterisk.service.d"
    vendor.mkdir(parents=True)
    drop_ins.mkdir(parents=True)
    shutil.copy(packaged, vendor / "asterisk.service")
    shutil.copy(ASTERISK_DROP_IN, drop_ins / "appliance.conf")
    shutil.copy(ASTERISK_PACKAGED, drop_ins / "packaged.conf")
    assert exposure(tmp_path, "asterisk.service") <= 5.0


@needs_analyze
def test_own_asterisk_exposure(tmp_path: Path):
    units = tmp_path / "etc" / "systemd" / "system"
    (units / "asterisk.service.d").mkdir(parents=True)
    shutil.copy(ASTERISK_OWN, units / "asterisk.service")
    shutil.copy(ASTERISK_DROP_IN, units / "asterisk.service.d" / "appliance.conf")
    assert exposure(tmp_path, "asterisk.service") <= 5.0


def test_the_public_tracking_listener_is_boxed_in():
    """The one listener meant for the internet: its own descriptor and memory budget, no
    capability, and nothing of the calls within reach."""
    service = parse(TRACKING)["Service"]
    assert single(service, "ExecStart").endswith("appliance track")
    assert int(single(service, "LimitNOFILE")) >= 4096 + 256  # tracking.max_connections fits
    assert single(service, "MemoryMax")
    assert single(service, "Type") == "notify" and single(service, "WatchdogSec")
    assert not service.get("CapabilityBoundingSet") and not service.get("AmbientCapabilities")
    assert "SupplementaryGroups" not in service  # not Asterisk's group: no spool, no config
    assert {
        "-/var/lib/appliance/recordings",
        "-/var/lib/appliance/secrets",  # recording keys, the secret box, the AMI secret
        "-/var/lib/appliance-asterisk",
        "-/run/appliance-recordings",
    } <= words(service, "InaccessiblePaths")
    for key in ("ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateUsers", "NoNewPrivileges"):
        assert single(service, key) == "yes", key


def test_the_controller_sets_its_descriptor_budget():
    service = parse(CONTROLLER)["Service"]
    assert int(single(service, "LimitNOFILE")) >= 512 + 512  # http.max_connections + reserve


@needs_analyze
def test_tracking_listener_exposure(tmp_path: Path):
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(TRACKING, units / "appliance-tracking.service")
    assert exposure(tmp_path, "appliance-tracking.service") <= 2.0
