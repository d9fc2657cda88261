"""Render the Asterisk config the appliance owns from the templates in asterisk-config/.

Ownership is least privilege: the config is root's, readable by Asterisk's group only (files
0640, directory 0750), so that Asterisk's user cannot change how Asterisk starts or what it
loads. The compiled routes live apart, in a directory that belongs to the controller's user
(the owner of the data directory) and Asterisk's group, because the controller rewrites them.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from appliance import private_file
from appliance.calls import cdr
from appliance.calls.dialplan import Settings
from appliance.config import Config, ConfigError, open_no_link, resolve_secret
from appliance.integrator import agi_bin
from appliance.recordings import spool_files
from appliance.recordings.live import record_code
from appliance.resources import shipped_dir

# SIM905 is wrong here: module names grouped by reason read better as words than one per line
NOLOAD = (  # noqa: SIM905
    "chan_iax2.so chan_mgcp.so chan_skinny.so chan_unistim.so chan_motif.so chan_dahdi.so "
    "chan_console.so chan_alsa.so chan_oss.so res_xmpp.so pbx_dundi.so res_phoneprov.so "
    "res_pjsip_phoneprov_provider.so res_hep.so res_hep_pjsip.so res_hep_rtcp.so cdr_radius.so "
    "cel_radius.so cdr_tds.so cel_tds.so res_snmp.so res_config_ldap.so res_statsd.so "
    "res_chan_stats.so res_endpoint_stats.so res_prometheus.so res_calendar.so "
    "res_calendar_caldav.so res_calendar_ews.so res_calendar_exchange.so res_calendar_icalendar.so "
    "res_pjsip_config_wizard.so res_smdi.so app_voicemail.so res_http_websocket.so "
    "res_ari.so chan_rtp.so res_stasis_test.so res_pjsip_notify.so "
    # Anything that runs programs or places calls on its own: nothing reachable from a call,
    # a call file or a script may start a shell or dial out.
    "app_system.so func_shell.so app_externalivr.so app_mp3.so app_festival.so app_jack.so "
    "pbx_lua.so pbx_ael.so pbx_realtime.so pbx_spool.so pbx_loopback.so app_originate.so "
    "app_disa.so func_curl.so res_config_curl.so res_curl.so "
    "chan_audiosocket.so app_audiosocket.so res_audiosocket.so chan_websocket.so "
    "res_websocket_client.so res_aeap.so res_speech_aeap.so res_stir_shaken.so "
    "res_pjsip_stir_shaken.so res_http_media_cache.so "
    # ARI: an HTTP interface that can originate calls; the appliance does not serve it.
    "app_stasis.so app_stasis_broadcast.so res_stasis.so res_stasis_answer.so "
    "res_stasis_broadcast.so res_stasis_device_state.so res_stasis_playback.so "
    "res_stasis_recording.so res_stasis_snoop.so res_ari_applications.so res_ari_asterisk.so "
    "res_ari_bridges.so res_ari_channels.so res_ari_device_states.so res_ari_endpoints.so "
    "res_ari_events.so res_ari_model.so res_ari_playbacks.so res_ari_recordings.so "
    "res_ari_sounds.so"
).split()

# The events the call tracker reads (calls/tracker.py): all the attached mode's manager user gets.
CALL_EVENTS = (
    "Newchannel",
    "DialBegin",
    "DialEnd",
    "BridgeEnter",
    "HangupRequest",
    "Hangup",
    "UserEvent",
)
# The events the controller reads of the Asterisk it manages: the calls', panoramisk's
# connection handling, and the registration trunks' (asterisk/registrations.py).
AMI_EVENTS = (*CALL_EVENTS, "FullyBooted", "Shutdown", "Registry")

# Directories Asterisk writes to; etc/ (root's) and routes/ (the controller's) are apart.
ASTERISK_DIRS = ("db", "keys", "spool", "run", "log")
CDR_DIR = "log/cdr-custom"  # the controller moves and deletes the CDR files it reconciled
ROUTES_DIR = "routes"
ROUTES_FILE = "extensions_routes.conf"
PHONES_CONTEXT = "appliance-phones"  # where calls from the appliance's phones land: nowhere
PJSIP_FILE = "pjsip_appliance.conf"  # trunks and phones, rewritten by the controller
PJSIP_TEMPLATE = PJSIP_FILE + ".j2"


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
class EndpointView:
    """What the pjsip template needs of a phone; the password is already unsealed."""

    name: str
    password: str


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


def routes_path(config: Config) -> Path:
    """The compiled routes file, as the controller sees it."""
    return config.asterisk_dir_on_host / ROUTES_DIR / ROUTES_FILE


def pjsip_path(config: Config) -> Path:
    """The trunks and phones file, as the controller sees it."""
    return config.asterisk_dir_on_host / ROUTES_DIR / PJSIP_FILE


def cdr_dir(config: Config) -> Path | None:
    """Where Asterisk writes the CDR lines reconciliation reads, as the controller sees it;
    None when attached (the site's Asterisk writes none for the appliance)."""
    return None if config.attached else config.asterisk_dir_on_host / CDR_DIR


AGI_MARGIN = 1.0  # seconds Asterisk waits for the controller beyond its own budget


def dialplan_settings(config: Config) -> Settings:
    agi = config.agi
    deadline = agi.request_timeout + AGI_MARGIN
    return Settings(config.asterisk.inbound_context, f"agi://{agi.host}:{agi.port}", deadline)


def asterisk_uid(config: Config) -> int:
    return lookup_user(Path(config.asterisk.root), config.asterisk.user).uid


def context(config: Config, user: SystemUser) -> dict[str, Any]:
    root = Path(config.asterisk.root)
    spool = config.recordings.spool_dir.rstrip("/")
    raw, done = (
        f"{spool}/{spool_files.DIALPLAN_STEM}{end}"
        for end in (spool_files.RAW_SUFFIX, spool_files.DONE_SUFFIX)
    )
    ami_secret = resolve_secret("ami.secret", config.ami.secret)
    if not AMI_SECRET.fullmatch(ami_secret):
        raise ConfigError(
            "ami.secret: use 8 to 128 letters, digits or - _ . ~ + / = "
            "(it is written into Asterisk's manager.conf)"
        )
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
        "ami_secret": ami_secret,
        "record_code": record_code(ami_secret),
        "routes_file": f"{config.asterisk.dir.rstrip('/')}/{ROUTES_DIR}/{ROUTES_FILE}",
        "pjsip_file": f"{config.asterisk.dir.rstrip('/')}/{ROUTES_DIR}/{PJSIP_FILE}",
        "mixmonitor": f"{raw},D,/bin/touch {done}",
        "cdr_fields": tuple(cdr.FIELDS.values()),
        "ami_events": AMI_EVENTS,
        "agi_host": config.agi.host,
        "agi_port": config.agi.port,
        "sip_host": config.asterisk.sip_host,
        "sip_port": config.asterisk.sip_port,
        "rtp_start": config.asterisk.rtp_start,
        "rtp_end": config.asterisk.rtp_end,
        "inbound_context": config.asterisk.inbound_context,
        "phones_context": PHONES_CONTEXT,
    }


NOT_OURS = (
    "asterisk.mode is attached: Asterisk's config is the site's, the appliance writes none of "
    "it (see 'appliance attach snippet')"
)


def refuse_if_attached(config: Config) -> None:
    if config.attached:
        raise ConfigError(NOT_OURS)


AMI_SECRET = re.compile(r"[A-Za-z0-9_.~+/=-]{8,128}")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Asterisk config, not HTML; values are validated
    )


def render_files(values: dict[str, Any]) -> dict[str, str]:
    """Pure: template values in, file name -> text out (the root-owned config in etc/)."""
    env = _environment()
    return {
        name[: -len(".j2")]: env.get_template(name).render(values)
        for name in env.list_templates(extensions=["j2"])
        if name != PJSIP_TEMPLATE
    }


def pjsip_sections(
    trunks: list[TrunkView], endpoints: list[EndpointView], inbound_context: str
) -> str:
    """Pure: the trunks and phones as PJSIP sections (the file the controller rewrites)."""
    return (
        _environment()
        .get_template(PJSIP_TEMPLATE)
        .render(
            trunks=trunks,
            endpoints=endpoints,
            inbound_context=inbound_context,
            phones_context=PHONES_CONTEXT,
        )
    )


def write(
    config: Config,
    trunks: list[TrunkView],
    routes: str,
    endpoints: list[EndpointView] | None = None,
) -> Path:
    """Render and write the config and the compiled routes; create Asterisk's directories.
    Refused in attached mode: Asterisk's config is the site's."""
    refuse_if_attached(config)
    user = lookup_user(Path(config.asterisk.root), config.asterisk.user)
    files = render_files(context(config, user))
    base = config.asterisk_dir_on_host
    _only_root_above(base)
    base.mkdir(parents=True, exist_ok=True, mode=0o750)
    _own(base, 0, user.gid, 0o750)  # root's, so Asterisk cannot swap etc/ for its own
    for sub in ASTERISK_DIRS:
        _directory(base / sub, user.uid, user.gid, 0o750)
    _directory(base / CDR_DIR, user.uid, user.gid, 0o2770)
    # Asterisk writes recordings here (files 0640 with its UMask=0027); the controller, a member
    # of Asterisk's group, reads and removes them. Nobody else may look in.
    _directory(config.spool_on_host, user.uid, user.gid, 0o770)
    etc = base / "etc"
    _directory(etc, 0, user.gid, 0o750)
    for name, text in files.items():
        _write(etc / name, text, 0, user.gid)
    controller = config.data_dir.stat().st_uid
    _directory(base / ROUTES_DIR, controller, user.gid, 0o2750)
    _write(routes_path(config), routes, controller, user.gid)
    sections = pjsip_sections(trunks, endpoints or [], config.asterisk.inbound_context)
    _write(pjsip_path(config), sections, controller, user.gid)
    write_agi_wrapper(base, agi_bin.command(config.agi.host, config.agi.port), user.gid)
    return etc


def write_agi_wrapper(base: Path, argv: list[str], gid: int) -> Path:
    """The `appliance-agi` wrapper in `<asterisk.dir>/agi-bin` (astagidir): root's, run by
    Asterisk's group. Written again on every render, so it is always the current one."""
    _directory(base / agi_bin.DIR, 0, gid, 0o750)
    target = base / agi_bin.DIR / agi_bin.NAME
    _write(target, agi_bin.wrapper(argv), 0, gid)
    _own(target, 0, gid, 0o750)
    return target


def _only_root_above(base: Path) -> None:
    """Root writes Asterisk's config, its own, only through directories no other user can
    change. Otherwise another user could swap one for a link to where the config would land
    as root's (the data dir, which the appliance user owns, is no place for it)."""
    if os.geteuid() != 0:
        return
    parent = private_file.not_roots_alone(base.parent)
    if parent is not None:
        raise ConfigError(
            f"asterisk.dir: {parent} is not root's alone; keep Asterisk's directory under "
            "directories only root may change (as /var/lib/appliance-asterisk)"
        )


def _directory(path: Path, uid: int, gid: int, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _own(path, uid, gid, mode)


def _write(target: Path, text: str, uid: int, gid: int) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        _set_owner(fd, uid, gid, 0o640)  # the file just written, whatever its name is now
    os.replace(tmp, target)


def _own(path: Path, uid: int, gid: int, mode: int) -> None:
    """Owner and mode of a directory or file, never through a link: a directory the Asterisk
    user or the controller owns may hold a link it planted where one of ours was."""
    fd = open_no_link(path, f"asterisk.dir: {path} is a link; remove it")
    try:
        kind = os.fstat(fd).st_mode
        if not (stat.S_ISDIR(kind) or stat.S_ISREG(kind)):
            raise ConfigError(f"asterisk.dir: {path} is not a directory or a file; remove it")
        _set_owner(fd, uid, gid, mode)
    finally:
        os.close(fd)


def _set_owner(fd: int, uid: int, gid: int, mode: int) -> None:
    """chown (as root; a non-root install keeps its own user) before chmod: chown clears the
    setgid bit."""
    if os.geteuid() == 0:
        os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)
