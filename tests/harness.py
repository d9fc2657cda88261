"""Real processes for tests: Asterisk from the sandbox root, the controller, SIPp peers.

Every process started here is stopped by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIPP_DIR = REPO / "tests" / "sipp"


# Tiers by cost, cheapest first (tests/conftest.py marks every test with one)
TIERS = ("pure", "web", "postgres", "asterisk", "chromium", "netns", "nspawn")


def costs(tier: str):
    """Declares what a fixture costs: every test that uses it is in `tier` or a costlier one."""
    assert tier in TIERS, tier

    def mark(function):
        function.tier = tier
        return function

    return mark


def sandbox(command: str) -> str:
    """What scripts/asterisk-sandbox COMMAND prints."""
    return subprocess.run(
        [str(REPO / "scripts" / "asterisk-sandbox"), command],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def asterisk_root() -> Path:
    path = Path(os.environ.get("APPLIANCE_TEST_ASTERISK_ROOT") or sandbox("root"))
    if not (path / "usr" / "sbin" / "asterisk").exists():
        raise RuntimeError(f"no Asterisk in {path}: run scripts/asterisk-sandbox build")
    return path


_HANDED_OUT: set[tuple[int, int]] = set()  # (kind, port): never the same port twice a run


def free_port(kind: int = socket.SOCK_STREAM, low: int = 21000, high: int = 32000) -> int:
    """A free port between Asterisk's RTP range and the kernel's ephemeral range, so that no
    outgoing connection or media stream can take it before the test binds it; never one
    handed out before in this run (a stack's ports must differ from each other)."""
    for _ in range(200):
        port = random.randint(low, high)
        if (kind, port) in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _HANDED_OUT.add((kind, port))
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


def privileged_port() -> int:
    """A free port below 1024, as the FastAGI port must be."""
    return free_port(low=600, high=1000)


def low_ports_open_to_all(port: int) -> bool:
    """Whether every user of this machine may listen on `port` (net.ipv4.ip_unprivileged_port_start
    at or below it, as in many containers). The controller refuses to start there; the tests'
    controllers are then told this is a test machine (agi.allow_unprivileged_ports), and the
    tests of that refusal set it back."""
    from appliance.asterisk import agi_port

    return agi_port.open_to_others(agi_port.unprivileged_port_start(), port)


@contextlib.contextmanager
def time_bound(seconds: float, error: BaseException) -> Iterator[None]:
    """Raise `error` in the body if it runs longer than `seconds`: a bound against a hang, for
    synchronous code in the main thread (SIGALRM)."""

    def alarm(_signum: int, _frame: object) -> None:
        raise error

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler of its own for `signum` (the kernel's SigCgt mask),
    so that the signal reaches the program rather than ending it before it set one up."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def fetch_health(port: int, certificate: Path, token: str) -> dict | None:
    """The controller's /health on 127.0.0.1:port; None while it does not answer."""
    context = ssl.create_default_context(cafile=str(certificate))
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/health", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except (OSError, ValueError):
        return None


@dataclass
class Stack:
    """One appliance instance: its data dir, its Asterisk dir inside the root, its ports."""

    data_dir: Path
    root: Path
    asterisk_dir: str = field(default_factory=lambda: f"/tmp/appliance-test-{uuid.uuid4().hex[:8]}")
    ami_port: int = field(default_factory=free_port)
    agi_port: int = field(default_factory=privileged_port)
    http_port: int = field(default_factory=free_port)
    tracking_port: int = field(default_factory=free_port)
    sip_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    phone_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    extra_env: dict[str, str] = field(default_factory=dict)
    # host directories Asterisk sees read-only inside its root (host path, path in the root):
    # bind mounts in a mount namespace of its own, gone with it
    mounts: list[tuple[Path, str]] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    shared: Baseline | None = None  # what reset() restores, for a stack a module shares

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        env.update(
            {
                "APPLIANCE_PATHS_DATA_DIR": str(self.data_dir),
                "APPLIANCE_ASTERISK_ROOT": str(self.root),
                "APPLIANCE_ASTERISK_DIR": self.asterisk_dir,
                "APPLIANCE_AMI_PORT": str(self.ami_port),
                "APPLIANCE_AGI_PORT": str(self.agi_port),
                "APPLIANCE_HTTP_PORT": str(self.http_port),
                "APPLIANCE_TRACKING_PORT": str(self.tracking_port),
                "APPLIANCE_ASTERISK_SIP_PORT": str(self.sip_port),
                "APPLIANCE_AMI_MAX_BACKOFF": "1",
                "APPLIANCE_RECORDINGS_SPOOL_DIR": f"{self.asterisk_dir}/spool/recordings",
            }
        )
        if low_ports_open_to_all(self.agi_port):
            env["APPLIANCE_AGI_ALLOW_UNPRIVILEGED_PORTS"] = "true"
        env.update(self.extra_env)
        return env

    @property
    def asterisk_dir_on_host(self) -> Path:
        return self.root / self.asterisk_dir.lstrip("/")

    @property
    def spool_on_host(self) -> Path:
        return self.asterisk_dir_on_host / "spool" / "recordings"

    @property
    def database(self) -> Path:
        return self.data_dir / "appliance.db"

    def appliance(
        self, *args: str, check: bool = True, input: str | None = None, own_process: bool = False
    ):
        """`appliance ARGS` with this stack's settings: in this process (tests/inprocess.py),
        or with `own_process` as a process of its own, as an admin runs it."""
        if own_process:
            result = subprocess.run(
                [sys.executable, "-m", "appliance", *args],
                env=self.env,
                input=input,
                capture_output=True,
                text=True,
                timeout=120,
            )
        else:
            from tests.inprocess import in_process

            settings = {k: v for k, v in self.env.items() if k.startswith("APPLIANCE_")}
            result = in_process(args, input, settings)
        if check and result.returncode != 0:
            raise AssertionError(
                f"appliance {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    # Asterisk --------------------------------------------------------------------------
    def asterisk_argv(self, *args: str) -> list[str]:
        argv = ["/usr/sbin/asterisk", "-C", f"{self.asterisk_dir}/etc/asterisk.conf", *args]
        return argv if self.root == Path("/") else ["chroot", str(self.root), *argv]

    def start_asterisk(self) -> subprocess.Popen:
        log = open(self.data_dir / "asterisk.out", "ab")  # noqa: SIM115
        argv = self.asterisk_argv("-f")
        if self.mounts and self.root != Path("/"):
            binds = [
                f"mount --bind {shlex.quote(str(host))} {shlex.quote(str(self.root) + inside)}"
                f" && mount -o remount,bind,ro {shlex.quote(str(self.root) + inside)}"
                for host, inside in self.mounts
            ]
            script = " && ".join([*binds, 'exec "$@"'])
            argv = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                *argv,
            ]
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(proc)
        wait_for(
            lambda: self.asterisk_cli("core waitfullybooted", check=False).returncode == 0,
            timeout=20,
            what="Asterisk to boot",
        )
        return proc

    def asterisk_cli(self, command: str, check: bool = True):
        return subprocess.run(
            self.asterisk_argv("-rx", command),
            capture_output=True,
            text=True,
            timeout=20,
            check=check,
        )

    # Controller ------------------------------------------------------------------------
    def start_controller(
        self, wait_ami: bool = True, nofile: int | None = None
    ) -> subprocess.Popen:
        """The controller; `nofile`: its descriptor limit (soft and hard), as a unit's
        LimitNOFILE= would set it."""
        log = open(self.data_dir / "controller.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_descriptor_limit(nofile),
        )
        self.processes.append(proc)
        wait_for(
            lambda: self.health() is not None or proc.poll() is not None,
            timeout=20,
            what="the controller's health endpoint",
        )
        if proc.poll() is not None:
            raise AssertionError(f"controller exited {proc.returncode}:\n{self.controller_log()}")
        if wait_ami:
            wait_for(
                lambda: (self.health() or {}).get("checks", {}).get("ami"),
                timeout=20,
                what="AMI connected",
            )
        return proc

    def start_tracking(self, nofile: int | None = None) -> subprocess.Popen:
        """The public tracking listener, a process of its own (appliance track); returns once
        it has written its counters (which the controller's /health then shows)."""
        log = open(self.data_dir / "tracking.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "track"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_descriptor_limit(nofile),
        )
        self.processes.append(proc)
        wait_for(
            lambda: self.tracking_counters() or proc.poll() is not None,
            timeout=20,
            what="the tracking listener's counters",
        )
        if proc.poll() is not None:
            log_text = (self.data_dir / "tracking.log").read_text(errors="replace")
            raise AssertionError(f"tracking listener exited {proc.returncode}:\n{log_text}")
        return proc

    def tracking_counters(self) -> dict:
        """What the tracking listener last wrote about itself (empty until it has)."""
        path = self.data_dir / "tracking.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def controller_log(self) -> str:
        path = self.data_dir / "controller.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @functools.cached_property
    def monitor_token(self) -> str:
        """A token that may read /health's counters (what monitoring would use)."""
        made = self.appliance("apikey", "add", "admin", "--scope", "config:read", "--name", "tests")
        return made.stdout.rsplit(" ", 1)[1].strip()

    def health(self) -> dict | None:
        return fetch_health(self.http_port, self.data_dir / "tls" / "cert.pem", self.monitor_token)

    def counter(self, name: str) -> int:
        """One of the counters /health exposes (what happened since the controller started)."""
        return int(((self.health() or {}).get("counters") or {}).get(name, -1))

    def query(self, sql: str, *args) -> list[sqlite3.Row]:
        with sqlite3.connect(self.database) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, args).fetchall()

    def calls(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM calls ORDER BY started_at")

    def finished(self, count: int = 1, timeout: float = 15) -> list[sqlite3.Row]:
        """Wait for `count` call records with an outcome."""

        def done():
            rows = self.calls()
            return rows if len(rows) >= count and all(r["disposition"] for r in rows) else None

        return wait_for(done, timeout=timeout, what=f"{count} finished call record(s)")

    def sipp_background(
        self,
        number: str,
        caller: str = "13125550111",
        talk_ms: int = 3000,
        scenario: str = "carrier_call.xml",
    ) -> subprocess.Popen:
        """A call that goes on while the test acts on it (SIPp runs in the data dir, where
        the speech scenarios find their audio)."""
        command = carrier_command(self, number, caller, "Jane", talk_ms, scenario=scenario)
        return subprocess.Popen(
            command,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, proc: subprocess.Popen, timeout: float = 10) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def start_running(self) -> Stack:
        """The configuration of `running`, then Asterisk and the controller."""
        self.appliance(
            "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(self.phone_port)
        )
        forward = ("--forward", "+12025550199", "--trunk", "carrier", "--ring-timeout", "3")
        self.appliance("route", "add", "Spring flyer", *forward)
        self.appliance("route", "add", "Default desk", *forward, "--default")
        number = ("+12025550123", "--label", "Spring flyer", "--source", "Google Ads")
        self.appliance("number", "add", *number, "--route", "Spring flyer")
        self.appliance("config", "render")
        self.start_asterisk()
        self.start_controller()
        return self

    # Sharing one running stack between the tests of a module ------------------------------
    def share(self) -> Stack:
        """Keep what reset() brings the stack back to: every table's rows and the files Asterisk
        runs from, as they are now (the module's stack just configured and running)."""
        self.shared = self._baseline()
        return self

    def _baseline(self) -> Baseline:
        from appliance.asterisk import render
        from appliance.config import load

        config = load(environ=self.env)
        files = (render.routes_path(config), render.pjsip_path(config))
        with sqlite3.connect(self.database) as db:
            tables = {name: db.execute(f'SELECT * FROM "{name}"').fetchall() for name in _own(db)}
        texts = {path: path.read_text() for path in files}
        return Baseline(tables, texts, dict(self.extra_env))

    def reset(self) -> Stack:
        """Back to what share() kept, between two tests of a module: once no call is left in
        Asterisk, every table as it was (calls, recordings, audit, numbers, routes, trunks ...),
        and, where a test changed the routes or trunks, Asterisk running the files it had. The
        processes are the same ones: a test that stops, restarts or reconfigures them takes a
        stack of its own."""
        baseline = self.shared
        assert baseline is not None, "share() the stack first"
        wait_for(self.idle, timeout=30, what="no call left in Asterisk")
        reloads = self.counter("dialplan_reloads"), self.counter("pjsip_reloads")
        changed = any(path.read_text() != text for path, text in baseline.files.items())
        for cdr in (self.asterisk_dir_on_host / "log" / "cdr-custom").glob("*"):
            cdr.unlink()  # else the calls it holds would be reconciled back in
        with sqlite3.connect(self.database) as db:
            for name, rows in baseline.tables.items():
                db.execute(f'DELETE FROM "{name}"')
                if rows:
                    marks = ", ".join("?" * len(rows[0]))
                    db.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
        if changed:  # the controller rewrites them within its refresh interval, and reloads

            def reloaded() -> bool:
                back = all(path.read_text() == text for path, text in baseline.files.items())
                now = self.counter("dialplan_reloads"), self.counter("pjsip_reloads")
                return back and now != reloads

            wait_for(reloaded, timeout=20, what="Asterisk running the module's routes again")
        self.extra_env.clear()
        self.extra_env.update(baseline.env)
        return self

    def idle(self) -> bool:
        """No channel in Asterisk and every call record with its outcome."""
        out = self.asterisk_cli("core show channels count", check=False).stdout
        busy = re.search(r"^(\d+) active channels?", out, re.M)
        return (
            busy is not None
            and busy.group(1) == "0"
            and all(r["disposition"] for r in self.calls())
        )

    def close(self) -> None:
        for proc in reversed(self.processes):
            self.stop(proc)
        shutil.rmtree(self.asterisk_dir_on_host, ignore_errors=True)


def _own(db: sqlite3.Connection) -> list[str]:
    """The database's tables but SQLite's own and full-text indexes (virtual tables and their
    shadow tables, which follow their content table through its triggers)."""
    rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    virtual = [name for name, sql in rows if sql and sql.upper().startswith("CREATE VIRTUAL")]
    return [
        name
        for name, _ in rows
        if not name.startswith("sqlite_")
        and not any(name == v or name.startswith(f"{v}_") for v in virtual)
    ]


@dataclass(frozen=True)
class Baseline:
    tables: dict[str, list[tuple]]
    files: dict[Path, str]
    env: dict[str, str]


def _descriptor_limit(nofile: int | None):
    """What a child runs before exec to take `nofile` as its descriptor limit (None: the
    test's own)."""
    if nofile is None:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


@dataclass
class SippResult:
    returncode: int
    output: str
    messages: str

    @property
    def responses(self) -> list[int]:
        """Status codes of the responses the carrier received, in order."""
        return [int(m) for m in re.findall(r"^SIP/2\.0 (\d{3}) ", self.messages, re.M)]


def sipp_phone(
    port: int,
    scenario: str = "phone_answer.xml",
    calls: int = 1,
    cwd: Path | None = None,
    trace: Path | None = None,
    timeout_s: int = 60,
) -> subprocess.Popen:
    """SIPp as the business phone (UAS) on 127.0.0.1:port; `trace` keeps its messages; it
    gives up (and fails) after `timeout_s`, which must outlast the calls it takes."""
    tracing = ["-trace_msg", "-message_file", str(trace)] if trace else []
    return subprocess.Popen(
        [
            "sipp",
            *tracing,
            "-sf",
            str(SIPP_DIR / scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(calls),
            "-nostdin",
            "-timeout",
            f"{timeout_s}s",
            "-timeout_error",
        ],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def carrier_command(
    stack: Stack,
    number: str,
    caller: str,
    caller_name: str,
    talk_ms: int = 1000,
    calls: int = 1,
    rate: int = 10,
    scenario: str = "carrier_call.xml",
    source: str = "127.0.0.1",
) -> list[str]:
    """SIPp as the carrier (UAC) placing `calls` calls to `number` at Asterisk's PJSIP port,
    from the address `source`. It gives up (and fails) a minute after the calls should end."""
    timeout_s = 60 + talk_ms // 1000
    return [
        "sipp", f"127.0.0.1:{stack.sip_port}", "-sf", str(SIPP_DIR / scenario),
        "-i", source, "-p", str(free_port(socket.SOCK_DGRAM)), "-s", number,
        "-set", "caller", caller, "-set", "caller_name", caller_name, "-d", str(talk_ms),
        "-m", str(calls), "-r", str(rate), "-l", str(calls),
        "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error",
    ]  # fmt: skip


def sipp_call(
    stack: Stack,
    number: str,
    caller: str,
    caller_name: str,
    talk_ms: int = 1000,
    calls: int = 1,
    rate: int = 10,
    cwd: Path | None = None,
    scenario: str = "carrier_call.xml",
    source: str = "127.0.0.1",
) -> SippResult:
    """Place the calls and wait for them; the result carries SIPp's message trace."""
    log = Path(tempfile.mkstemp(prefix="sipp-uac-", suffix=".log")[1])
    command = carrier_command(
        stack, number, caller, caller_name, talk_ms, calls, rate, scenario, source
    )
    result = subprocess.run(
        [*command, "-trace_msg", "-message_file", str(log)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    messages = log.read_text(errors="replace")
    log.unlink()
    return SippResult(result.returncode, result.stdout + result.stderr, messages)


_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


@dataclass(frozen=True)
class SipMessage:
    at: float  # epoch seconds, SIPp's clock (the host's)
    sent: bool
    first_line: str


def sip_messages(trace: str) -> list[SipMessage]:
    """The messages of a SIPp trace (-trace_msg), in order."""
    found, stamp, sent, expect = [], 0.0, False, False
    for line in trace.splitlines():
        if match := _STAMP.match(line):
            stamp = dt.datetime.fromisoformat(match.group(1)).timestamp()
        elif line.startswith(("UDP message sent", "UDP message received")):
            sent, expect = "sent" in line, True
        elif expect and line.strip():
            found.append(SipMessage(stamp, sent, line.strip()))
            expect = False
    return found


def first(messages: list[SipMessage], sent: bool, starts: str) -> float:
    """When the first message sent (or received) that starts with `starts` was seen."""
    return next(m.at for m in messages if m.sent == sent and m.first_line.startswith(starts))


def invited(trace: Path) -> list[str]:
    """The users of the Request-URIs of the INVITEs a SIPp phone received, in order."""
    text = trace.read_text(errors="replace") if trace.exists() else ""
    return re.findall(r"^INVITE sip:([^@\s]*)@", text, re.M)
