"""What `appliance doctor` checks on a server installed with scripts/install: the services are
up and start at boot, and the config and data have the owners and modes the install gave them
(the config may hold secrets inline; only root may change what the services run with)."""

from __future__ import annotations

import pwd
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

INSTALLED_UNIT = Path("/etc/systemd/system/appliance.service")
ETC = Path("/etc/appliance")
USER = "appliance"
# unit -> whether the calls need it (else it degrades one feature)
SERVICES = {
    "asterisk": True,
    "appliance": True,
    "appliance-tracking": False,
    "appliance-transcriber": False,
}


@dataclass(frozen=True)
class Problem:
    fatal: bool
    text: str
    fix: str


def services(attached: bool, tracking: bool = True) -> list[str]:
    """The units the install made that should run; attached to a site's own PBX, Asterisk is
    not one; with tracking.enabled off, the tracking listener has nothing to serve."""
    left_out = {"asterisk"} if attached else set()
    if not tracking:
        left_out.add("appliance-tracking")
    return [unit for unit in SERVICES if unit not in left_out]


def installed(unit: Path = INSTALLED_UNIT) -> bool:
    return unit.exists()


def unit_state(systemctl: str, unit: str) -> tuple[str, str]:
    """(is-active, is-enabled) as systemctl prints them."""

    def ask(verb: str) -> str:
        try:
            done = subprocess.run(
                [systemctl, verb, unit], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        return done.stdout.strip() or "unknown"

    return ask("is-active"), ask("is-enabled")


def service_problems(states: Mapping[str, tuple[str, str]]) -> list[Problem]:
    """Pure: what is wrong with the services, given each one's (active, enabled) state."""
    problems = []
    for unit, (active, enabled) in states.items():
        needed = SERVICES.get(unit, False)
        if active != "active":
            problems.append(
                Problem(
                    needed,
                    f"{unit} is {active}",
                    f"systemctl start {unit}; journalctl -u {unit} says why it stopped",
                )
            )
        elif enabled != "enabled":
            problems.append(
                Problem(False, f"{unit} is {enabled} at boot", f"systemctl enable {unit}")
            )
    return problems


@dataclass(frozen=True)
class FileMode:
    path: Path
    uid: int
    mode: int
    is_dir: bool


def mode_problems(
    config_files: Iterable[FileMode], data_dir: FileMode, appliance_uid: int | None
) -> list[Problem]:
    """Pure: the config must be root's and not readable by others (it may hold secrets); the
    data dir the appliance user's and closed to others."""
    problems = []
    for entry in config_files:
        mode = stat.S_IMODE(entry.mode)
        wanted = "0750" if entry.is_dir else "0640"
        fix = f"chown root:appliance {entry.path}; chmod {wanted} {entry.path}"
        if entry.uid != 0:
            problems.append(Problem(True, f"{entry.path} is not root's", fix))
        elif mode & 0o022:
            problems.append(Problem(True, f"{entry.path} is writable by others than root", fix))
        elif mode & 0o007:
            problems.append(Problem(True, f"{entry.path} is readable by others", fix))
    data_mode = stat.S_IMODE(data_dir.mode)
    fix = f"chown appliance:appliance {data_dir.path}; chmod 0750 {data_dir.path}"
    if appliance_uid is None:
        problems.append(Problem(True, f"no user {USER}", "run scripts/install again"))
    elif data_dir.uid != appliance_uid:
        problems.append(Problem(True, f"{data_dir.path} is not the appliance user's", fix))
    elif data_mode & 0o027:
        problems.append(Problem(True, f"{data_dir.path} is open to others", fix))
    return problems


def file_mode(path: Path) -> FileMode:
    st = path.lstat()
    return FileMode(path, st.st_uid, st.st_mode, stat.S_ISDIR(st.st_mode))


def config_modes(etc: Path = ETC) -> list[FileMode]:
    paths = [etc, *sorted(etc.glob("*.ini"))]
    drop_ins = etc / "appliance.ini.d"
    if drop_ins.is_dir():
        paths += [drop_ins, *sorted(drop_ins.glob("*.ini"))]
    return [file_mode(p) for p in paths]


def appliance_uid() -> int | None:
    """The user the services run as (scripts/install creates it)."""
    try:
        return pwd.getpwnam(USER).pw_uid
    except KeyError:
        return None
