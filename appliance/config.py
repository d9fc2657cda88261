"""Configuration: every setting is declared once, here, with its default and its help.

Layers, later wins: the defaults below, the config file (``--config``, ``$APPLIANCE_CONFIG`` or
``/etc/appliance/appliance.ini`` when it exists), drop-ins in ``<config file>.d/*.ini``, and
environment variables named ``APPLIANCE_<SECTION>_<KEY>``.  A value may contain ``{data_dir}``.
Secrets may be written as ``file:/path`` or ``env:NAME`` instead of inline.
"""

from __future__ import annotations

import configparser
import dataclasses
import errno
import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import private_file
from appliance.forwarded import parse_proxies

AUDIT_MINIMUM = 365  # days the audit log is kept at the least (privacy.audit_days)
DEFAULT_CONFIG_FILE = Path("/etc/appliance/appliance.ini")
ENV_PREFIX = "APPLIANCE_"
MANAGED, ATTACHED = "managed", "attached"  # asterisk.mode


class ConfigError(Exception):
    """A bad or missing configuration value; the message names the key and fits on one line."""


def setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class PathsConfig:
    data_dir: str = setting(
        "data", "Directory for the database, secrets, TLS files and logs (relative to cwd)."
    )


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = setting(
        "sqlite:///{data_dir}/appliance.db",
        "SQLAlchemy URL. SQLite is embedded; postgresql+psycopg://user:pw@host/db scales out.",
    )


@dataclass(frozen=True)
class HttpConfig:
    host: str = setting("127.0.0.1", "Address the admin UI and API listen on.")
    port: int = setting(8443, "Port of the admin UI and API.")
    tls: bool = setting(True, "Serve HTTPS with the certificate in {data_dir}/tls.")
    public_url: str = setting("", "URL shown to admins; empty means https://<host>:<port>/.")
    trusted_proxies: str = setting(
        "",
        "Addresses or networks (CIDR) of reverse proxies in front of the admin UI and API "
        "(space-separated): from them, the client's address is read from X-Forwarded-For.",
    )
    max_connections: int = setting(
        512,
        "Connections the admin UI and API hold at once; more are refused at once (the "
        "controller keeps descriptors for calls, AMI and the database).",
    )
    connections_per_network: int = setting(
        64, "Connections one client network (IPv4 /24, IPv6 /48) may hold at once."
    )


@dataclass(frozen=True)
class AgiConfig:
    host: str = setting("127.0.0.1", "Loopback address the FastAGI server listens on.")
    port: int = setting(
        573,
        "Port of the FastAGI server, asked by dynamic routes and integrators' AGI scripts; "
        "below 1024, so that no "
        "unprivileged local process can listen on it when the controller is down.",
    )
    request_timeout: float = setting(
        1.0,
        "Seconds the controller may spend on one dynamic-route request before it gives up "
        "(the call then takes its compiled route).",
    )
    allow_unprivileged_ports: bool = setting(
        False,
        "Start although net.ipv4.ip_unprivileged_port_start is at or below agi.port. "
        "Dangerous: any local user may then listen on the FastAGI port while the controller "
        "is down and answer Asterisk's dynamic routes with commands Asterisk runs (recordings "
        "that run programs, calls to any number). Only for a throwaway test machine; raise "
        "the sysctl instead.",
    )


@dataclass(frozen=True)
class AmiConfig:
    host: str = setting("127.0.0.1", "Asterisk Manager Interface address.")
    port: int = setting(5038, "Asterisk Manager Interface port.")
    username: str = setting("appliance", "AMI user the controller logs in as.")
    secret: str = setting(
        "file:{data_dir}/secrets/ami.secret", "AMI secret (inline, file:/path or env:NAME)."
    )
    max_backoff: float = setting(1.0, "Longest wait in seconds between AMI reconnect attempts.")


@dataclass(frozen=True)
class AsteriskConfig:
    mode: str = setting(
        "managed",
        "managed: the appliance renders and reloads Asterisk's config (trunks, phones, routes); "
        "attached: Asterisk (or FreePBX) is the site's own, the appliance only follows its calls "
        "over AMI and answers its dialplan's FastAGI requests (appliance attach snippet).",
    )
    root: str = setting(
        "/", "Root directory Asterisk runs in: / on a host with Asterisk, else the sandbox root."
    )
    dir: str = setting(
        "{data_dir}/asterisk",
        "Directory, as seen inside the root, for the rendered config, compiled routes and logs.",
    )
    user: str = setting("asterisk", "System user Asterisk runs as.")
    sip_host: str = setting("127.0.0.1", "Address of the PJSIP UDP transport.")
    sip_port: int = setting(5060, "Port of the PJSIP UDP transport.")
    rtp_start: int = setting(10000, "First UDP port for call audio (RTP).")
    rtp_end: int = setting(20000, "Last UDP port for call audio (RTP).")
    inbound_context: str = setting("appliance-inbound", "Dialplan context for calls from trunks.")


@dataclass(frozen=True)
class RecordingsConfig:
    spool_dir: str = setting(
        "/run/appliance-recordings",
        "Where Asterisk writes recordings in progress, as seen inside asterisk.root: keep it "
        "on tmpfs (plaintext lives there only until the call ends).",
    )
    store_dir: str = setting("{data_dir}/recordings", "Where sealed recordings are kept.")
    key_file: str = setting(
        "{data_dir}/secrets/recordings.keys", "Master keys that wrap each recording's data key."
    )
    key_passphrase: str = setting(
        "", "Passphrase the key file is sealed with (inline, file:/path or env:NAME); empty: none."
    )


@dataclass(frozen=True)
class SmtpConfig:
    host: str = setting(
        "", "SMTP server for invitations, password resets and alerts; empty: no mail is sent."
    )
    port: int = setting(587, "Its port (587 submission with STARTTLS, 465 TLS, 25 relay).")
    security: str = setting("starttls", "starttls, tls or none (only for a relay on loopback).")
    username: str = setting("", "User name to log in with; empty: no login.")
    password: str = setting("", "Its password: inline, file:/path or env:NAME.")
    sender: str = setting("", "From address, e.g. calls@example.com.")


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = setting(
        True, "Serve the website snippet and its endpoints (dynamic number insertion, forms)."
    )
    host: str = setting(
        "127.0.0.1",
        "Address the tracking endpoints listen on: the only listener meant for the internet "
        "(0.0.0.0, or keep loopback behind a reverse proxy).",
    )
    port: int = setting(8444, "Port of the tracking endpoints (HTTPS with the admin certificate).")
    tls: bool = setting(True, "Serve HTTPS; off only behind a TLS-terminating proxy.")
    public_url: str = setting(
        "", "Address websites load the snippet from; empty means https://<host>:<port>."
    )
    ip_storage: str = setting(
        "truncate",
        "How a visitor's IP address is kept: truncate (IPv4 /24, IPv6 /48), hash (a salt that "
        "changes daily), none, or full.",
    )
    requests_per_minute: int = setting(
        120, "Requests one client address may make per minute (page views and heartbeats)."
    )
    new_visits_per_hour: int = setting(
        60, "Visitor sessions one client address may start per hour (each may take a number)."
    )
    grace: int = setting(
        300,
        "Seconds after a pool number's hold ended during which a call to it is still "
        "attributed to its last visitor.",
    )
    pool_share: int = setting(
        20,
        "Percent of a site's pool that visitors from one network (an IPv4 /24, an IPv6 /48) "
        "may hold at once (at least 2 numbers); others from it see the site's own number. "
        "100: no limit.",
    )
    sessions_per_site: int = setting(
        100_000,
        "Visitor sessions going on that the controller keeps in memory per site (a few hundred "
        "bytes each); beyond it, the session seen longest ago ends.",
    )
    sessions_per_network: int = setting(
        1000,
        "Visitor sessions going on per site from one network (an IPv4 /24, an IPv6 /48); "
        "beyond it, new visits from that network are refused (429) until some end.",
    )
    pages_per_day: int = setting(
        1000,
        "Page views stored per site and network (an IPv4 /24, an IPv6 /48) each day (UTC); "
        "beyond it, visits still get numbers but their further pages are not stored.",
    )
    trusted_proxies: str = setting(
        "",
        "Addresses or networks (CIDR) of reverse proxies in front of the tracking listener "
        "(space-separated): from them, the visitor's address is read from X-Forwarded-For.",
    )
    max_connections: int = setting(
        4096,
        "Connections the tracking listener holds at once, from everyone; more are refused "
        "at once. It runs in a process of its own (appliance track), so a flood of them "
        "costs the admin UI, FastAGI and the calls nothing.",
    )
    connections_per_network: int = setting(
        64,
        "Connections one client network (IPv4 /24, IPv6 /48) may hold at once; a trusted "
        "proxy has no such cap.",
    )
    timeout: float = setting(
        5.0,
        "Seconds a client has for its TLS handshake, for sending a whole request (after "
        "connecting or after the last answer) and for its body; then it is disconnected.",
    )


@dataclass(frozen=True)
class DestinationsConfig:
    timeout: float = setting(10.0, "Seconds a webhook or ad platform may take to answer.")
    google_ads_api: str = setting(
        "https://googleads.googleapis.com/v19", "Google Ads API address (with its version)."
    )
    google_oauth: str = setting(
        "https://oauth2.googleapis.com/token", "Google's token endpoint (OAuth refresh)."
    )
    meta_api: str = setting(
        "https://graph.facebook.com/v21.0", "Meta Graph API address (with its version)."
    )
    microsoft_api: str = setting(
        "https://campaign.api.bingads.microsoft.com/Api/Advertiser/CampaignManagement/v13/"
        "CampaignManagementService.svc",
        "Microsoft Advertising Campaign Management service address.",
    )
    microsoft_oauth: str = setting(
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "Microsoft's token endpoint (OAuth refresh).",
    )
    allowed_networks: str = setting(
        "",
        "Networks (CIDR, space-separated, e.g. 10.0.5.20/32) that webhooks and ad platforms "
        "may reach although they are loopback, private, link-local or otherwise not public "
        "(a CRM on the LAN, a receiver on 127.0.0.1); every port in them is reachable, so "
        "name single addresses. Empty: none; this machine's own services (AMI, SMTP, the "
        "database) and its networks stay out of reach.",
    )

    @property
    def allowed(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """allowed_networks, parsed (ValueError names the first that is not a network)."""
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks.split())


@dataclass(frozen=True)
class TranscriptionConfig:
    enabled: bool = setting(True, "Transcribe every sealed recording (while a model is installed).")
    model_dir: str = setting(
        "{data_dir}/models", "Where Vosk models are installed (appliance models install)."
    )
    model: str = setting("", "Name of the installed model to use; empty: the first by name.")
    model_list_url: str = setting(
        "https://alphacephei.com/vosk/models/model-list.json",
        "The official list of Vosk models (names, archives, checksums), for "
        "'appliance models install NAME' on a host with internet access.",
    )
    workers: int = setting(
        0, "Transcription worker processes (each loads the model once); 0: one per CPU core."
    )
    grammar: str = setting(
        "",
        "Comma-separated words and phrases recognition is limited to (for small models and "
        "fixed vocabularies); empty: anything the model knows.",
    )
    redact: bool = setting(
        True,
        "Mask card numbers (Luhn-checked) and 9-digit social-security-style numbers, said as "
        "digits or digit words, before a transcript is stored.",
    )
    redact_patterns: str = setting(
        "",
        "More to mask: regular expressions, one per line, matched against each speaker's "
        "words (case-insensitive).",
    )
    redact_audio: bool = setting(
        False,
        "Also replace the recording with a copy in which what was masked is a tone (the "
        "original is crypto-erased).",
    )
    time_limit: int = setting(
        3600,
        "Seconds one transcription may take; a worker still busy then is stopped (and started "
        "again) and the job tried later, parked after 10 tries.",
    )
    lease: int = setting(
        120,
        "Seconds a worker's claim on a transcription lasts; renewed every third of it while "
        "the worker is alive, so a killed worker's job is taken over after at most this.",
    )


@dataclass(frozen=True)
class AnalysisConfig:
    answered: int = setting(20, "Lead score points of an answered call.")
    first_time: int = setting(15, "Lead score points of a first call from a number.")
    talk_per_minute: int = setting(10, "Lead score points per minute of talk.")
    talk_max: int = setting(30, "At most this many points from talk time.")
    spam: int = setting(-100, "Lead score points of a call that looks like spam.")


# privacy: retention of the box's logs (an account's data has its own settings) ----------------
@dataclass(frozen=True)
class PrivacyConfig:
    log_days: int = setting(
        30,
        "Days a line of Asterisk's CDR files may wait for reconciliation before it is dropped "
        "(reconciled files are deleted at once); 0: kept until reconciled.",
    )
    audit_days: int = setting(
        730,
        "Days the audit log is kept (an account's legal hold keeps its entries longer); at "
        "least 365; 0: kept for ever.",
    )


@dataclass(frozen=True)
class PluginsConfig:
    enabled: bool = setting(True, "Load Python plugins (entry points and the drop-in directory).")
    dir: str = setting(
        "/etc/appliance/plugins.d",
        "Drop-in directory of plugin files (*.py), run by the controller: refused unless it and "
        "each file are owned by root or the controller's user and writable by no one else.",
    )
    timeout: float = setting(
        0.5,
        "Seconds one plugin hook may take; past it the call goes on without that plugin's "
        "answer. Less than agi.request_timeout (a route decision must fit inside it).",
    )


@dataclass(frozen=True)
class LogConfig:
    level: str = setting("info", "Log level: debug, info, warning or error.")


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    asterisk: AsteriskConfig = field(default_factory=AsteriskConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    destinations: DestinationsConfig = field(default_factory=DestinationsConfig)
    transcription: TranscriptionConfig = field(default_factory=TranscriptionConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    log: LogConfig = field(default_factory=LogConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    source: str = "defaults"

    @property
    def attached(self) -> bool:
        """Asterisk's config is the site's: the appliance writes none of it, reloads nothing."""
        return self.asterisk.mode == ATTACHED

    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data_dir)

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def spool_on_host(self) -> Path:
        """The recording spool as the controller sees it (through the root)."""
        return Path(self.asterisk.root) / self.recordings.spool_dir.lstrip("/")

    @property
    def asterisk_dir_on_host(self) -> Path:
        """The Asterisk directory as the controller sees it (through the root)."""
        return Path(self.asterisk.root) / self.asterisk.dir.lstrip("/")


SECTIONS: dict[str, type] = {
    f.name: f.type if isinstance(f.type, type) else globals()[str(f.type)]
    for f in dataclasses.fields(Config)
    if f.name != "source"
}


def iter_settings() -> Iterator[tuple[str, str, dataclasses.Field[Any]]]:
    """Yield (section, key, field) for every declared setting."""
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            yield section, f.name, f


def _parse(section: str, key: str, kind: Any, raw: str, origin: str) -> Any:
    name = f"{section}.{key}"
    raw = raw.strip()
    if "\x00" in raw:  # no path, address or secret has one, and the OS refuses it late
        raise ConfigError(f"{name}: contains a NUL character (from {origin})")
    if kind in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}: {raw!r} is not an integer (from {origin})") from None
    if kind in (float, "float"):
        try:
            number = float(raw)
        except ValueError:
            raise ConfigError(f"{name}: {raw!r} is not a number (from {origin})") from None
        if not math.isfinite(number):
            raise ConfigError(f"{name}: {raw!r} is not a finite number (from {origin})")
        return number
    if kind in (bool, "bool"):
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: {raw!r} is not true or false (from {origin})")
    return raw


def _read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable") from None
    except OSError as exc:  # a directory, a socket, ...
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid INI: {first_line}") from None
    return parser


def config_files(path: Path) -> list[Path]:
    """The config file and its drop-ins, in the order they are read."""
    if not path.name or "\x00" in str(path):
        raise ConfigError(f"config file {str(path)[:80]!r} is not the name of a file")
    dropins = path.with_name(path.name + ".d")
    return [path, *(sorted(dropins.glob("*.ini")) if dropins.is_dir() else [])]


def _file_layers(path: Path) -> list[tuple[str, Mapping[str, Mapping[str, str]]]]:
    layers: list[tuple[str, Mapping[str, Mapping[str, str]]]] = []
    for file in config_files(path):
        parser = _read_ini(file)
        layers.append((str(file), {s: dict(parser[s]) for s in parser.sections()}))
    return layers


def _env_layer(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    layer: dict[str, dict[str, str]] = {}
    for section, key, _ in iter_settings():
        name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        if name in environ:
            layer.setdefault(section, {})[key] = environ[name]
    return layer


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from its layers; raise ConfigError on any bad value."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        path = environ[f"{ENV_PREFIX}CONFIG"]
    if path is None and DEFAULT_CONFIG_FILE.exists():
        path = DEFAULT_CONFIG_FILE
    layers = _file_layers(Path(path)) if path is not None else []
    layers.append(("environment", _env_layer(environ)))

    known = {(s, k): f for s, k, f in iter_settings()}
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for origin, layer in layers:
        for section, items in layer.items():
            if section not in SECTIONS:
                raise ConfigError(f"[{section}]: unknown section (from {origin})")
            for key, raw in items.items():
                f = known.get((section, key))
                if f is None:
                    raise ConfigError(f"{section}.{key}: unknown key (from {origin})")
                values[section][key] = _parse(section, key, f.type, raw, origin)

    data_dir = str(values["paths"].get("data_dir", PathsConfig.data_dir))
    data_dir = os.path.abspath(os.path.expanduser(data_dir))
    values["paths"]["data_dir"] = data_dir
    sections: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = values[section].get(f.name, f.default)
            if isinstance(value, str):
                value = value.replace("{data_dir}", data_dir)
            kwargs[f.name] = value
        sections[section] = cls(**kwargs)
    config = Config(**sections, source=str(path) if path else "defaults")
    validate(config)
    return config


_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,79}")
_AMI_USER = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a manager.conf section name


def validate(config: Config) -> None:
    """Raise ConfigError naming the first wrong setting, checked in the order of CHECKS."""
    for check in CHECKS:
        check(config)


def _check_ports(config: Config) -> None:
    for section, key in (
        ("http", "port"),
        ("agi", "port"),
        ("ami", "port"),
        ("asterisk", "sip_port"),
        ("tracking", "port"),
    ):
        port = getattr(getattr(config, section), key)
        if not 0 < port < 65536:
            raise ConfigError(f"{section}.{key}: {port} is not a TCP/UDP port")
    if not 1024 <= config.asterisk.rtp_start < config.asterisk.rtp_end <= 65535:
        raise ConfigError("asterisk.rtp_start/rtp_end: need 1024 <= rtp_start < rtp_end <= 65535")


def _check_log(config: Config) -> None:
    if config.log.level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log.level: {config.log.level!r} is not debug, info, warning or error")


def _check_request_timeouts(config: Config) -> None:
    if not 0 < config.agi.request_timeout <= 30:
        raise ConfigError("agi.request_timeout: more than 0 and at most 30 seconds")
    if not 0 < config.plugins.timeout < config.agi.request_timeout:
        raise ConfigError("plugins.timeout: more than 0 and less than agi.request_timeout")


def _check_plugins_dir(config: Config) -> None:
    data_dir = Path(config.paths.data_dir).resolve()
    plugins_dir = Path(config.plugins.dir).resolve()
    if plugins_dir == data_dir or data_dir in plugins_dir.parents:
        raise ConfigError(
            "plugins.dir: not inside paths.data_dir, where the controller writes (a plugin "
            "it could write would run again after every restart)"
        )


def _check_local_services(config: Config) -> None:
    """FastAGI and AMI: loopback only, and AGI on a port only root can take."""
    if config.agi.port >= 1024:
        raise ConfigError(
            f"agi.port: {config.agi.port} must be below 1024, so that no unprivileged local "
            "process can take it"
        )
    for section, key in (("agi", "host"), ("ami", "host")):
        if not _loopback(getattr(getattr(config, section), key)):
            raise ConfigError(f"{section}.{key}: must be a loopback IPv4 address, e.g. 127.0.0.1")


def _check_rendered_paths(config: Config) -> None:
    """Values rendered into Asterisk's config: no spaces, commas, semicolons or parentheses."""
    for section, key in (("recordings", "spool_dir"), ("asterisk", "dir")):
        value = getattr(getattr(config, section), key)
        if not _SAFE_PATH.fullmatch(value) or "/../" in f"{value}/":
            raise ConfigError(
                f"{section}.{key}: {value[:80]!r} must be an absolute path of letters, digits "
                "and . _ - /"
            )


def _check_smtp(config: Config) -> None:
    if config.smtp.security not in ("starttls", "tls", "none"):
        raise ConfigError("smtp.security: starttls, tls or none")
    if config.smtp.security == "none" and config.smtp.host and not _loopback(config.smtp.host):
        raise ConfigError("smtp.security: none is only for a relay on this machine (loopback)")
    if config.smtp.host and not EMAIL.fullmatch(config.smtp.sender):
        raise ConfigError("smtp.sender: an e-mail address, e.g. calls@example.com")


def _check_trusted_proxies(config: Config) -> None:
    for name in ("http", "tracking"):
        try:
            parse_proxies(getattr(config, name).trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"{name}.trusted_proxies: {exc}") from None


def _check_tracking(config: Config) -> None:
    if config.tracking.ip_storage not in ("truncate", "hash", "none", "full"):
        raise ConfigError("tracking.ip_storage: truncate, hash, none or full")
    if not 1 <= config.tracking.pool_share <= 100:
        raise ConfigError("tracking.pool_share: a percentage from 1 to 100")
    if config.tracking.requests_per_minute < 1 or config.tracking.new_visits_per_hour < 1:
        raise ConfigError("tracking.requests_per_minute/new_visits_per_hour: at least 1")


def _check_connections(config: Config) -> None:
    for section in ("http", "tracking"):
        listener = getattr(config, section)
        if not 1 <= listener.connections_per_network <= listener.max_connections:
            raise ConfigError(
                f"{section}.connections_per_network: at least 1 and at most "
                f"{section}.max_connections"
            )


def _check_tracking_limits(config: Config) -> None:
    if not 0.5 <= config.tracking.timeout <= 60:
        raise ConfigError("tracking.timeout: from 0.5 to 60 seconds")
    for key in ("sessions_per_site", "sessions_per_network", "pages_per_day"):
        if getattr(config.tracking, key) < 1:
            raise ConfigError(f"tracking.{key}: at least 1")


def _check_retention(config: Config) -> None:
    if not 0 <= config.privacy.log_days <= 36500:
        raise ConfigError("privacy.log_days: 0 (kept until reconciled) to 36500 days")
    if config.privacy.audit_days > 36500:
        raise ConfigError("privacy.audit_days: at most 36500 days (0 keeps it for ever)")
    if 0 < config.privacy.audit_days < AUDIT_MINIMUM or config.privacy.audit_days < 0:
        raise ConfigError(
            f"privacy.audit_days: {config.privacy.audit_days} is below the minimum of "
            f"{AUDIT_MINIMUM} days (0 keeps the audit log for ever)"
        )


def _check_destinations(config: Config) -> None:
    if config.destinations.timeout <= 0:
        raise ConfigError("destinations.timeout: must be more than 0 seconds")
    try:
        config.destinations.allowed  # noqa: B018 - parsed to be checked
    except ValueError as exc:
        raise ConfigError(
            f"destinations.allowed_networks: {exc} (networks in CIDR, e.g. 10.0.5.20/32)"
        ) from None


def _check_transcription(config: Config) -> None:
    redaction_patterns(config)  # each one compiles
    if not 0 <= config.transcription.workers <= 64:
        raise ConfigError("transcription.workers: 0 (one per CPU core) to 64")
    if config.transcription.lease < 10:
        raise ConfigError("transcription.lease: at least 10 seconds")
    if config.transcription.time_limit < 60:
        raise ConfigError("transcription.time_limit: at least 60 seconds")
    if config.transcription.model and not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", config.transcription.model
    ):
        raise ConfigError(
            "transcription.model: the name of an installed model (appliance models list)"
        )


def _check_asterisk(config: Config) -> None:
    if config.asterisk.mode not in (MANAGED, ATTACHED):
        raise ConfigError(f"asterisk.mode: {MANAGED} or {ATTACHED}")
    if not _AMI_USER.fullmatch(config.ami.username) or config.ami.username.lower() == "general":
        raise ConfigError(
            "ami.username: 1 to 64 letters, digits, _ and -, not 'general' (it names a section "
            "of Asterisk's manager.conf)"
        )
    if not _CONTEXT.fullmatch(config.asterisk.inbound_context):
        raise ConfigError(
            "asterisk.inbound_context: a dialplan context name (letters, digits, _ and -)"
        )


CHECKS: tuple[Callable[[Config], None], ...] = (
    _check_ports,
    _check_log,
    _check_request_timeouts,
    _check_plugins_dir,
    _check_local_services,
    _check_rendered_paths,
    _check_smtp,
    _check_trusted_proxies,
    _check_tracking,
    _check_connections,
    _check_tracking_limits,
    _check_retention,
    _check_destinations,
    _check_transcription,
    _check_asterisk,
)


def redaction_patterns(config: Config) -> list[re.Pattern[str]]:
    """transcription.redact_patterns, compiled; ConfigError names the one that does not."""
    found = []
    for line in config.transcription.redact_patterns.splitlines():
        if not line.strip():
            continue
        if len(line) > 200:
            raise ConfigError("transcription.redact_patterns: at most 200 characters each")
        try:
            found.append(re.compile(line.strip(), re.IGNORECASE))
        except (re.error, OverflowError) as exc:  # OverflowError: a{4294967296}
            raise ConfigError(
                f"transcription.redact_patterns: {line.strip()[:60]!r} is not a regular "
                f"expression ({exc})"
            ) from None
    return found


EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


def resolve_secret(name: str, value: str, environ: Mapping[str, str] | None = None) -> str:
    """Turn an inline, ``file:`` or ``env:`` secret into its value."""
    environ = os.environ if environ is None else environ
    if value.startswith("file:"):
        path = Path(value[5:])
        try:
            return _read_secret_file(path)
        except FileNotFoundError:
            raise ConfigError(
                f"{name}: secret file {path} does not exist (run 'appliance init')"
            ) from None
        except PermissionError:
            raise ConfigError(f"{name}: secret file {path} is not readable by this user") from None
        except private_file.UnsafeFile as exc:
            raise ConfigError(f"{name}: secret file {exc}") from None
    if value.startswith("env:"):
        var = value[4:]
        if var not in environ:
            raise ConfigError(f"{name}: environment variable {var} is not set")
        return environ[var]
    return value


def open_no_link(path: Path, refusal: str) -> int:
    """A read-only descriptor of `path` itself, never of what a link there points to (root
    works in directories other users own); ConfigError(`refusal`) when it is a link. Opened
    without blocking, so that a FIFO planted there cannot hang the caller."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(refusal) from None
        raise


def _read_secret_file(path: Path) -> str:
    """A secret file's text, read the one safe way (root renders Asterisk's config with the
    AMI secret, whose file the appliance user owns)."""
    try:
        return private_file.read(path).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise private_file.UnsafeFile(f"{path} is not text") from None


def key_passphrase(config: Config) -> str | None:
    value = config.recordings.key_passphrase
    return resolve_secret("recordings.key_passphrase", value) if value else None


def render_ini(config: Config) -> str:
    """The effective configuration as an INI document with every key and its help."""
    lines = [f"# effective configuration (source: {config.source})"]
    for section, cls in SECTIONS.items():
        lines.append(f"\n[{section}]")
        current = getattr(config, section)
        for f in dataclasses.fields(cls):
            lines.append(f"# {f.metadata['help']}")
            value = getattr(current, f.name)
            secret = (section, f.name) in (("ami", "secret"), ("recordings", "key_passphrase"))
            if secret and value and not value.startswith(("file:", "env:")):
                value = "********"
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append(f"{f.name} = {value}")
    return "\n".join(lines) + "\n"
