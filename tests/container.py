"""A booted Debian 12 server for tests of the production install: a debootstrapped bookworm
root (built once, cached) copied per test, booted with systemd-nspawn (systemd as PID 1,
sharing the host's network, so its services listen on the host's loopback), commands run inside
with nsenter and a clean environment, as an admin logged in there would have."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness import sandbox, wait_for

CACHE = Path("/var/cache/appliance")
BASE = CACHE / "bookworm-root"
# What a minimal Debian 12 server has: systemd, Python 3.11, CA certificates.
PACKAGES = "systemd,systemd-sysv,dbus,python3,ca-certificates"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_root() -> Path:
    """The cached bookworm root (debootstrap from the mirror this host's apt uses)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".bookworm-root.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (BASE / ".ready").exists():
            return BASE
        mirror = sandbox("mirror")
        partial = BASE.with_name(BASE.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={PACKAGES}",
                "bookworm",
                str(partial),
                mirror,
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        (partial / ".ready").touch()
        partial.rename(BASE)
        return BASE


def copy_tree(source: Path, target: Path) -> None:
    subprocess.run(["cp", "-a", "--reflink=auto", f"{source}/.", str(target)], check=True)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Server:
    """One booted container. `run` executes a command inside as root."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.console = directory.with_name(directory.name + ".console")
        self.process: subprocess.Popen | None = None
        self.leader = 0

    def path(self, inside: str) -> Path:
        """A path inside the container, as the host sees it."""
        return self.directory / inside.lstrip("/")

    def prepare(self) -> None:
        """Copy the base root and give it what this host's package manager uses: the same
        certificate authorities (a proxy's among them) and pip configuration."""
        self.directory.mkdir(parents=True)
        copy_tree(base_root(), self.directory)
        (self.path("/etc/hostname")).write_text(f"{self.name}\n")
        (self.path("/etc/machine-id")).unlink(missing_ok=True)
        for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(crt, self.path("/usr/local/share/ca-certificates"))
        for conf in ("/etc/pip.conf",):
            if Path(conf).exists():
                shutil.copy(conf, self.path(conf))

    def boot(self) -> None:
        console = open(self.console, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                "systemd-nspawn",
                "--register=no",
                "--keep-unit",
                "--quiet",
                f"--machine={self.name}",
                "-D",
                str(self.directory),
                "-b",
            ],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.leader = wait_for(self._init_pid, timeout=60, what="the container's systemd")
        wait_for(
            lambda: (
                self.run("systemctl", "is-system-running").stdout.strip() in ("running", "degraded")
            ),
            timeout=120,
            interval=0.5,
            what=f"the container to boot ({self.console})",
        )
        self.run("update-ca-certificates", check=True)

    def _init_pid(self) -> int:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited: {self.console.read_text()[-2000:]}")
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        for pid in children:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                return int(pid)
        return 0

    def run(
        self, *argv: str, check: bool = False, timeout: float = 600, env: dict | None = None
    ) -> Result:
        environment = ["env", "-i", f"PATH={PATH}", "HOME=/root", "LANG=C.UTF-8"]
        environment += [f"{k}={v}" for k, v in (env or {}).items()]
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", *environment, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return Result(result.returncode, result.stdout, result.stderr)

    def journal(self, unit: str = "") -> str:
        argv = ["journalctl", "--no-pager", "-n", "80"] + (["-u", unit] if unit else [])
        return self.run(*argv).stdout

    def shutdown(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None and self.leader:
            # SIGRTMIN+4 asks systemd for an orderly poweroff.
            os.kill(self.leader, signal.SIGRTMIN + 4)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        deadline = time.monotonic() + 10
        while _mounts_under(self.directory) and time.monotonic() < deadline:
            time.sleep(0.1)

    def remove(self) -> None:
        if _mounts_under(self.directory):  # never delete through a mount into the host
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        self.console.unlink(missing_ok=True)


def _mounts_under(directory: Path) -> list[str]:
    with open("/proc/self/mountinfo") as mounts:
        return [
            line.split()[4]
            for line in mounts
            if line.split()[4].startswith(f"{directory}/") or line.split()[4] == str(directory)
        ]
