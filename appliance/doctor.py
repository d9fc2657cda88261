"""`appliance doctor`: check the installation and print what to fix."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import production, tls, tracking_status
from appliance.asterisk import agi_port, render
from appliance.asterisk.peercred import peer_uid
from appliance.config import Config, ConfigError, key_passphrase, resolve_secret
from appliance.db import engine as db
from appliance.db.migrate import current_revision, head_revision
from appliance.recordings import keys

OK, WARN, FAIL = "ok", "warn", "FAIL"
RENEW_WITHIN_DAYS = 30
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")  # systemd-timesyncd, once in sync


@dataclass(frozen=True)
class Finding:
    status: str
    check: str
    detail: str
    fix: str = ""


def check_data_dir(config: Config) -> Finding:
    path = config.data_dir
    if not path.is_dir():
        return Finding(FAIL, "data dir", f"{path} does not exist", "run 'appliance init'")
    if not os.access(path, os.W_OK):
        return Finding(
            FAIL,
            "data dir",
            f"{path} is not writable",
            f"chown it to the user running the appliance ({os.getuid()})",
        )
    return Finding(OK, "data dir", str(path))


def check_secrets(config: Config) -> Finding:
    folder = config.secrets_dir
    if not folder.is_dir():
        return Finding(FAIL, "secrets", f"{folder} missing", "run 'appliance init'")
    loose = [p.name for p in folder.iterdir() if stat.S_IMODE(p.stat().st_mode) & 0o077]
    if loose:
        return Finding(
            FAIL,
            "secrets",
            f"readable by others: {', '.join(sorted(loose))}",
            f"chmod 600 {folder}/*",
        )
    return Finding(OK, "secrets", f"{folder} is private")


def check_database(config: Config) -> Finding:
    try:
        engine = db.make_engine(config.database.url)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
    except ConfigError as exc:
        return Finding(FAIL, "database", str(exc), "fix database.url")
    except Exception as exc:
        return Finding(
            FAIL,
            "database",
            f"unreachable: {str(exc).splitlines()[0]}",
            "check database.url and that the server is running",
        )
    if current != head_revision():
        return Finding(
            FAIL,
            "database",
            f"schema at {current}, code expects {head_revision()}",
            "run 'appliance migrate'",
        )
    return Finding(OK, "database", f"reachable, schema at {current}")


class NotAsterisk(Exception):
    """The AMI port is held by another user's process: the secret is not sent to it."""


def ami_login(
    host: str, port: int, username: str, secret: str, asterisk: set[int], timeout: float = 3.0
) -> str:
    """Log in over a plain socket; return the AMI response message (raises OSError, and
    NotAsterisk before sending anything to a listener that is not Asterisk's)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        uid = peer_uid(sock)
        if uid not in asterisk:
            raise NotAsterisk(f"uid {uid}")
        reader = sock.makefile("rb")
        reader.readline()  # banner
        sock.sendall(
            f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\n"
            "Events: off\r\n\r\n".encode()
        )
        lines = []
        while line := reader.readline().decode("utf-8", "replace").strip():
            lines.append(line)
        sock.sendall(b"Action: Logoff\r\n\r\n")
        return "\n".join(lines)


def check_ami(config: Config) -> Finding:
    where = f"{config.ami.host}:{config.ami.port}"
    try:
        secret = resolve_secret("ami.secret", config.ami.secret)
        asterisk = {0, render.asterisk_uid(config)}
        reply = ami_login(config.ami.host, config.ami.port, config.ami.username, secret, asterisk)
    except ConfigError as exc:
        return Finding(FAIL, "AMI login", str(exc), "run 'appliance init'")
    except NotAsterisk as exc:
        return Finding(
            FAIL,
            "AMI login",
            f"{where} is held by {exc}, not Asterisk: the secret was not sent",
            "find the process listening there (ss -ltnp) and stop it",
        )
    except OSError as exc:
        return Finding(
            FAIL,
            "Asterisk",
            f"AMI {where} unreachable ({exc})",
            "start Asterisk (scripts/asterisk-sandbox start, or systemctl start "
            "asterisk) and check ami.host/ami.port",
        )
    if "Response: Success" not in reply:
        fix = (
            "add the manager user of 'appliance attach snippet --part manager' to the site's "
            "manager_custom.conf and run: asterisk -rx 'manager reload'"
            if config.attached
            else "run 'appliance config render' and reload Asterisk, or fix ami.secret"
        )
        return Finding(
            FAIL, "AMI login", f"refused at {where} for user {config.ami.username!r}", fix
        )
    return Finding(OK, "AMI login", f"{config.ami.username}@{where}")


def check_port(name: str, host: str, port: int) -> Finding:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            listening = True
    except socket.gaierror as exc:
        return Finding(FAIL, name, f"{host!r} is not a host this machine can find ({exc})")
    except OSError:
        listening = False
    if listening:
        return Finding(OK, name, f"{host}:{port} is listening")
    return Finding(
        WARN,
        name,
        f"nothing listens on {host}:{port}",
        "start the controller ('appliance serve' or systemctl start appliance)",
    )


def fastagi_finding(
    held: list[agi_port.Listener], host: str, port: int, trusted: set[int]
) -> Finding:
    """Who holds the FastAGI port: the controller's user (or root), nobody, or someone who
    would answer Asterisk's dynamic routes in its place."""
    where = f"{host}:{port}"
    others = sorted({one.uid for one in held if one.uid not in trusted})
    if others:
        return Finding(
            FAIL,
            "FastAGI",
            f"{where} is held by uid {', '.join(map(str, others))}, not the controller: it "
            "would answer Asterisk's dynamic routes",
            f"find it (ss -ltnp 'sport = :{port}'), stop it, and keep the port for root "
            f"({agi_port.SYSCTL} above {port})",
        )
    if not held:
        return Finding(
            WARN,
            "FastAGI",
            f"nothing listens on {where}",
            "start the controller ('appliance serve' or systemctl start appliance)",
        )
    owners = ", ".join(str(uid) for uid in sorted({one.uid for one in held}))
    return Finding(OK, "FastAGI", f"{where} is listening (uid {owners})")


def check_fastagi(config: Config) -> Finding:
    """Read from the kernel's socket tables, not by connecting: the controller counts a
    connection that is not Asterisk's as an intrusion."""
    trusted = {0, os.getuid()}
    service = production.appliance_uid()
    if service is not None:
        trusted.add(service)
    held = agi_port.holders(agi_port.read_listeners(), config.agi.host, config.agi.port)
    return fastagi_finding(held, config.agi.host, config.agi.port, trusted)


def port_guard_finding(start: int | None, port: int, allowed: bool) -> Finding:
    """Whether only root may listen on the FastAGI port (the controller refuses to start
    otherwise, unless agi.allow_unprivileged_ports)."""
    if start is None:
        return Finding(OK, "FastAGI port guard", f"only root may listen below 1024 ({port})")
    if not agi_port.open_to_others(start, port):
        return Finding(OK, "FastAGI port guard", f"{agi_port.SYSCTL} is {start}: above {port}")
    if allowed:
        detail = f"{agi_port.danger(start, port)} (agi.allow_unprivileged_ports is on)"
        return Finding(WARN, "FastAGI port guard", detail, agi_port.fix(port))
    detail = f"{agi_port.danger(start, port)}; the controller refuses to start"
    return Finding(FAIL, "FastAGI port guard", detail, agi_port.fix(port))


def check_tracking(config: Config) -> Finding:
    """The public tracking listener, a process of its own: listening, and its counters (the
    status file it writes every few seconds) fresh."""
    tracking = config.tracking
    found = check_port("tracking listener", tracking.host, tracking.port)
    if found.status != OK:
        fix = "start it ('appliance track' or systemctl start appliance-tracking)"
        return Finding(found.status, found.check, found.detail, fix)
    counters = tracking_status.read_counters(config)
    if not counters:
        return Finding(
            WARN,
            found.check,
            f"{found.detail}, but {tracking_status.path(config)} is missing or stale",
            "is something else listening on tracking.port? see journalctl -u appliance-tracking",
        )
    refused = counters.get("tracking_connections_refused", 0)
    return Finding(OK, found.check, f"{found.detail}; {refused} connection(s) refused since start")


def check_asterisk_config(config: Config) -> Finding:
    conf = config.asterisk_dir_on_host / "etc" / "asterisk.conf"
    if not conf.exists():
        return Finding(FAIL, "Asterisk config", f"{conf} missing", "run 'appliance config render'")
    return Finding(OK, "Asterisk config", str(conf))


def check_routes(config: Config) -> Finding:
    routes = render.routes_path(config)
    if not routes.exists():
        return Finding(FAIL, "routes", f"{routes} missing", "run 'appliance config render'")
    return Finding(OK, "routes", f"compiled into {routes}")


def check_recordings(config: Config) -> Finding:
    try:
        ring = keys.load(Path(config.recordings.key_file), key_passphrase(config))
    except (keys.KeyProblem, ConfigError) as exc:
        return Finding(FAIL, "recordings", str(exc), "run 'appliance init' or restore the key file")
    if config.attached:
        return Finding(OK, "recordings", "none: attached calls are tracked, not recorded")
    spool = config.spool_on_host
    if not spool.is_dir():
        return Finding(
            FAIL, "recordings", f"spool {spool} missing", "run 'appliance config render'"
        )
    waiting = len(list(spool.glob("*.raw")))
    detail = f"master key {ring.current}; {waiting} recording(s) in the spool"
    if _filesystem(spool) != "tmpfs":
        return Finding(
            WARN,
            "recordings",
            f"{detail}; spool is not on tmpfs",
            "mount a tmpfs on recordings.spool_dir so plaintext never reaches a disk",
        )
    return Finding(OK, "recordings", detail)


def check_transcription(config: Config) -> Finding:
    from appliance.transcription import service

    reason = service.off_reason(config)
    if reason is not None:
        return Finding(
            WARN,
            "transcription",
            f"off: {reason}; calls are recorded as always",
            "appliance models install NAME (or an archive): the workers start within 10 s",
        )
    model = service.chosen_model(config)
    workers = service.worker_count(config)
    return Finding(
        OK, "transcription", f"model {model.name if model else '?'}, {workers} worker(s)"
    )


def _filesystem(path: Path) -> str:
    best, kind = "", ""
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            mount = fields[1]
            inside = str(path).startswith(mount.rstrip("/") + "/") or str(path) == mount
            if inside and len(mount) > len(best):
                best, kind = mount, fields[2]
    except OSError:
        return ""
    return kind


def check_disk(config: Config) -> Finding:
    path = config.data_dir if config.data_dir.exists() else Path("/")
    free = shutil.disk_usage(path).free
    text = f"{free / 2**30:.1f} GiB free at {path}"
    if free < 100 * 2**20:
        return Finding(FAIL, "disk", text, "free disk space: recordings will stop")
    if free < 2**30:
        return Finding(WARN, "disk", text, "free disk space soon")
    return Finding(OK, "disk", text)


def certificate_dates(cert: Path) -> tuple[float, bool]:
    """(not after, as epoch seconds; whether it is self-signed) of a PEM certificate. Raises
    OSError when openssl is missing, CalledProcessError when it cannot read the file."""
    shown = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-enddate", "-issuer", "-subject",
         "-nameopt", "RFC2253"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    fields = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    return ssl.cert_time_to_seconds(fields["notAfter"]), fields["issuer"] == fields["subject"]


def certificate_finding(
    cert: Path, key: Path, not_after: float, self_signed: bool, now: float
) -> Finding:
    """OK with more than RENEW_WITHIN_DAYS left, a warning within them, a failure once expired."""
    if self_signed:
        kind = "self-signed certificate"
        fix = (
            f"delete {cert} and {key}, run 'appliance init' (a new self-signed one) and "
            "restart the controller; or serve your own: appliance tls install CERT KEY"
        )
    else:
        kind = "certificate"
        fix = "install the renewed one: appliance tls install CERT KEY, then restart the controller"
    date = dt.datetime.fromtimestamp(not_after, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    days = (not_after - now) / 86400
    if days <= 0:
        return Finding(FAIL, "certificate", f"{kind} {cert} expired on {date}", fix)
    if days <= RENEW_WITHIN_DAYS:
        return Finding(WARN, "certificate", f"{kind} expires on {date}, in {days:.0f} day(s)", fix)
    return Finding(OK, "certificate", f"{kind} valid until {date} ({days:.0f} days)")


def check_certificate(config: Config, now: float | None = None) -> Finding:
    """The admin UI's certificate: browsers and API clients refuse it once it has expired."""
    if not config.http.tls:
        return Finding(OK, "certificate", "http.tls is off: the proxy in front serves TLS")
    cert, key = tls.cert_paths(config.data_dir)
    unreadable = Finding(
        FAIL,
        "certificate",
        f"{cert} is missing or unreadable",
        f"appliance tls install CERT KEY, or delete {cert} and {key} and run 'appliance init'",
    )
    if not cert.is_file():
        return unreadable
    try:
        not_after, self_signed = certificate_dates(cert)
    except (subprocess.CalledProcessError, KeyError, ValueError):
        return unreadable
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding(WARN, "certificate", f"expiry not checked: {exc}", "apt install openssl")
    now = time.time() if now is None else now
    return certificate_finding(cert, key, not_after, self_signed, now)


def ntp_synchronized(timedatectl: str | None) -> bool | None:
    """What `timedatectl show -p NTPSynchronized` says (True, False); None when it cannot say
    (no timedatectl, or no systemd to ask, as in a container)."""
    if timedatectl is None:
        return None
    try:
        shown = subprocess.run(
            [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = shown.stdout.strip()
    if shown.returncode != 0 or answer not in ("yes", "no"):
        return None
    return answer == "yes"


def check_clock(timedatectl: str | None, flag: Path = TIMESYNC_FLAG) -> Finding:
    """Business hours and call times follow the clock: warn (never fail) when it is not kept in
    time, or when nothing can tell."""
    fix = (
        "enable time synchronisation: timedatectl set-ntp true (systemd-timesyncd) or install "
        "chrony; business hours and call times follow this clock"
    )
    synchronized = ntp_synchronized(timedatectl)
    if synchronized:
        return Finding(OK, "clock", "synchronised (timedatectl)")
    if synchronized is False:
        return Finding(WARN, "clock", "not synchronised (timedatectl: NTPSynchronized=no)", fix)
    if flag.exists():
        return Finding(OK, "clock", f"synchronised (systemd-timesyncd: {flag})")
    asked = "timedatectl cannot tell" if timedatectl else "no timedatectl"
    return Finding(WARN, "clock", f"synchronisation unknown: {asked}, no {flag}", fix)


def _from_problems(check: str, problems: list[production.Problem], fine: str) -> Finding:
    if not problems:
        return Finding(OK, check, fine)
    status = FAIL if any(p.fatal for p in problems) else WARN
    return Finding(
        status, check, "; ".join(p.text for p in problems), "; ".join(p.fix for p in problems)
    )


def check_services(systemctl: str | None, attached: bool = False, tracking: bool = True) -> Finding:
    """On a server installed with scripts/install: each service up and enabled at boot (the
    site's own Asterisk, when attached, is the AMI check's)."""
    if systemctl is None:
        return Finding(WARN, "services", "systemctl not found", "")
    units = production.services(attached, tracking)
    states = {unit: production.unit_state(systemctl, unit) for unit in units}
    problems = production.service_problems(states)
    return _from_problems("services", problems, ", ".join(f"{u} active" for u in states))


def check_modes(config: Config) -> Finding:
    """On a server installed with scripts/install: config root's and private, data the
    appliance user's."""
    problems = production.mode_problems(
        production.config_modes(),
        production.file_mode(config.data_dir),
        production.appliance_uid(),
    )
    return _from_problems(
        "modes", problems, f"{production.ETC} root's and private, {config.data_dir} closed"
    )


def findings(config: Config) -> list[Finding]:
    checks: list[Callable[[], Finding]] = [
        lambda: check_data_dir(config),
        lambda: check_secrets(config),
        lambda: check_database(config),
    ]
    if not config.attached:  # the site's Asterisk config is not the appliance's to check
        checks += [lambda: check_asterisk_config(config), lambda: check_routes(config)]
    checks += [
        lambda: check_ami(config),
        lambda: check_fastagi(config),
        lambda: port_guard_finding(
            agi_port.unprivileged_port_start(),
            config.agi.port,
            config.agi.allow_unprivileged_ports,
        ),
        lambda: check_port("HTTP", config.http.host, config.http.port),
        *([lambda: check_tracking(config)] if config.tracking.enabled else []),
        lambda: check_recordings(config),
        lambda: check_transcription(config),
        lambda: check_disk(config),
        lambda: check_certificate(config),
        lambda: check_clock(shutil.which("timedatectl")),
    ]
    if production.installed():
        checks += [
            lambda: check_services(
                shutil.which("systemctl"), config.attached, config.tracking.enabled
            ),
            lambda: check_modes(config),
        ]
    return [_safely(check) for check in checks]


def _safely(check: Callable[[], Finding]) -> Finding:
    """A check that breaks is a finding too, never a traceback."""
    try:
        return check()
    except Exception as exc:
        return Finding(FAIL, "doctor", f"a check could not run: {type(exc).__name__}: {exc}")


def run(config: Config) -> int:
    results = findings(config)
    for f in results:
        print(f"[{f.status:>4}] {f.check}: {f.detail}")
        if f.fix and f.status != OK:
            print(f"       fix: {f.fix}")
    failed = sum(f.status == FAIL for f in results)
    print(f"{failed} problem(s) found" if failed else "all checks passed")
    return 1 if failed else 0
