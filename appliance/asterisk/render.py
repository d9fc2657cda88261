"""Render the Asterisk config the appliance owns from the templates in asterisk-config/."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from appliance.config import Config, ConfigError, resolve_secret
from appliance.resources import shipped_dir

NOLOAD = (
    "chan_iax2.so chan_mgcp.so chan_skinny.so chan_unistim.so chan_motif.so chan_dahdi.so "
    "chan_console.so chan_alsa.so chan_oss.so res_xmpp.so pbx_dundi.so res_phoneprov.so "
    "res_pjsip_phoneprov_provider.so res_hep.so res_hep_pjsip.so res_hep_rtcp.so cdr_radius.so "
    "cel_radius.so cdr_tds.so cel_tds.so res_snmp.so res_config_ldap.so res_statsd.so "
    "res_chan_stats.so res_endpoint_stats.so res_prometheus.so res_calendar.so "
    "res_calendar_caldav.so res_calendar_ews.so res_calendar_exchange.so res_calendar_icalendar.so "
    "res_pjsip_config_wizard.so res_smdi.so app_voicemail.so res_http_websocket.so "
    "res_ari.so chan_rtp.so res_stasis_test.so res_pjsip_notify.so"
).split()

# The events the controller reads (calls/tracker.py, and panoramisk's connection handling).
AMI_EVENTS = (
    "Newchannel",
    "DialBegin",
    "DialEnd",
    "BridgeEnter",
    "HangupRequest",
    "Hangup",
    "UserEvent",
    "FullyBooted",
    "Shutdown",
)

SUBDIRS = ("etc", "db", "keys", "spool", "run", "log", "log/cdr-custom")


def templates_dir() -> Path:
    return shipped_dir("asterisk-config")


@dataclass(frozen=True)
class TrunkView:
    """What the pjsip template needs of a trunk; the password is already unsealed."""

    name: str
    kind: str
    host: str
    port: int
    username: str = ""
    password: str = ""
    match: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemUser:
    uid: int
    gid: int
    group: str


def lookup_user(root: Path, name: str) -> SystemUser:
    """Find a user in the passwd/group files of the root Asterisk runs in."""
    if root == Path("/"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(f"asterisk.user: no system user {name!r}") from None
        return SystemUser(entry.pw_uid, entry.pw_gid, grp.getgrgid(entry.pw_gid).gr_name)
    uid = gid = None
    for line in _read_lines(root / "etc" / "passwd"):
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == name:
            uid, gid = int(fields[2]), int(fields[3])
    if uid is None or gid is None:
        raise ConfigError(f"asterisk.user: no user {name!r} in {root}/etc/passwd")
    group = next(
        (
            line.split(":")[0]
            for line in _read_lines(root / "etc" / "group")
            if line.split(":")[2:3] == [str(gid)]
        ),
        name,
    )
    return SystemUser(uid, gid, group)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"asterisk.root: cannot read {path}: {exc.strerror}") from None


def module_dir(root: Path) -> str:
    for pattern in ("usr/lib/*/asterisk/modules", "usr/lib/asterisk/modules"):
        for found in sorted(root.glob(pattern)):
            return "/" + str(found.relative_to(root))
    raise ConfigError(f"asterisk.root: no Asterisk modules under {root} (is Asterisk installed?)")


def context(config: Config, trunks: list[TrunkView], user: SystemUser) -> dict[str, Any]:
    root = Path(config.asterisk.root)
    return {
        "rendered_by": "appliance config render",
        "dir": config.asterisk.dir.rstrip("/"),
        "module_dir": module_dir(root),
        "user": config.asterisk.user,
        "group": user.group,
        "noload": NOLOAD,
        "ami_host": config.ami.host,
        "ami_port": config.ami.port,
        "ami_username": config.ami.username,
        "ami_secret": resolve_secret("ami.secret", config.ami.secret),
        "ami_events": AMI_EVENTS,
        "agi_host": config.agi.host,
        "agi_port": config.agi.port,
        "sip_host": config.asterisk.sip_host,
        "sip_port": config.asterisk.sip_port,
        "rtp_start": config.asterisk.rtp_start,
        "rtp_end": config.asterisk.rtp_end,
        "inbound_context": config.asterisk.inbound_context,
        "spool_dir": config.recordings.spool_dir.rstrip("/"),
        "trunks": trunks,
    }


def render_files(values: dict[str, Any]) -> dict[str, str]:
    """Pure: template values in, file name -> text out."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Asterisk config, not HTML; values are validated
    )
    return {
        name[: -len(".j2")]: env.get_template(name).render(values)
        for name in env.list_templates(extensions=["j2"])
    }


def write(config: Config, trunks: list[TrunkView]) -> Path:
    """Render and write the config; create the Asterisk directories owned by its user."""
    user = lookup_user(Path(config.asterisk.root), config.asterisk.user)
    files = render_files(context(config, trunks, user))
    base = config.asterisk_dir_on_host
    for sub in SUBDIRS:
        path = base / sub
        path.mkdir(parents=True, exist_ok=True, mode=0o750)
        _own(path, user, 0o750)
    # Asterisk writes recordings here (files 0640 with its UMask=0027); the controller, a member
    # of Asterisk's group, reads and removes them. Nobody else may look in.
    spool = config.spool_on_host
    spool.mkdir(parents=True, exist_ok=True, mode=0o770)
    _own(spool, user, 0o770)
    for name, text in files.items():
        target = base / "etc" / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        _own(tmp, user, 0o640)
        os.replace(tmp, target)
    return base / "etc"


def _own(path: Path, user: SystemUser, mode: int) -> None:
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, user.uid, user.gid)
