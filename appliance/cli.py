"""The `appliance` command. Anything wrong in what it is given ends in one line on stderr and
exit code 2; `doctor` exits 1 when it finds a problem; `serve` exits 3 when Asterisk refuses its
AMI login."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from appliance import __version__, admin, bootstrap, doctor
from appliance.asterisk import render
from appliance.calls.dialplan import compile_routes
from appliance.calls.store import CallStore
from appliance.config import Config, ConfigError, key_passphrase, load, render_ini
from appliance.db import engine as db
from appliance.db.migrate import current_revision, upgrade
from appliance.numbers import InvalidNumber
from appliance.recordings.container import RecordingError
from appliance.recordings.keys import KeyProblem
from appliance.recordings.vault import RecordingNotFound, RecordingVault
from appliance.secrets import new_password
from appliance.vocabulary import RecordingMode, RingStrategy, values

Command = Callable[[Config, argparse.Namespace], int]


def cmd_serve(config: Config, _args: argparse.Namespace) -> int:
    from appliance.controller import serve

    return asyncio.run(serve(config))


def cmd_init(config: Config, args: argparse.Namespace) -> int:
    result = bootstrap.initialise(config, args.admin)
    for item in result.created:
        print(f"created {item}")
    if result.admin_password:
        print(f"admin user: {args.admin}")
        print(f"one-time password: {result.admin_password}  (shown once; change it at first login)")
    print(f"data directory {config.data_dir} is ready")
    return 0


def cmd_migrate(config: Config, _args: argparse.Namespace) -> int:
    bootstrap.prepare_data_dir(config)
    engine = db.make_engine(config.database.url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before})"))
    return 0


def _sessions(config: Config) -> sessionmaker[Session]:
    return db.session_factory(db.make_engine(config.database.url))


def _session(config: Config) -> AbstractContextManager[Session]:
    return _sessions(config).begin()


def cmd_user_add(config: Config, args: argparse.Namespace) -> int:
    password = _read_password(args) or new_password()
    with _session(config) as session:
        user = admin.add_user(session, args.username, password, args.role, args.account)
        print(f"user {user.username} ({user.role}) added")
    if not (args.password_stdin or args.password_prompt):
        print(f"one-time password: {password}")
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if getattr(args, "password_prompt", False):
        return getpass.getpass("password: ")
    return None


def cmd_account_limits(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        account = admin.set_recording_limits(
            session, args.account_id, args.quota_mb, args.days, args.when_full
        )
        print(
            f"account {account.id}: recordings limited to {args.quota_mb or 'any'} MB and "
            f"{args.days or 'any number of'} days; when full: {args.when_full}"
        )
    return 0


def cmd_apikey_add(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        token = admin.add_api_key(session, args.username)
    print(f"API token for {args.username} (shown once): {token}")
    return 0


def cmd_account_add(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        account = admin.add_account(session, args.name, args.parent)
        print(f"account {account.id} {account.name!r} added under {account.parent_id}")
    return 0


def cmd_trunk_add(config: Config, args: argparse.Namespace) -> int:
    request = admin.TrunkRequest(
        name=args.name,
        kind=args.kind,
        host=args.host,
        port=args.port,
        username=args.username,
        password=_read_password(args),
        match=args.match or (),
    )
    with _session(config) as session:
        trunk = admin.add_trunk(session, bootstrap.secret_box(config), request, args.account)
        print(f"trunk {trunk.name} ({trunk.kind}, {trunk.host}:{trunk.port}) added")
    print("run 'appliance config render' and reload Asterisk to use it")
    return 0


def cmd_route_add(config: Config, args: argparse.Namespace) -> int:
    request = admin.RouteRequest(
        name=args.name,
        forward_to=args.forward or (),
        trunk=args.trunk,
        endpoints=args.endpoint or (),
        ring_timeout=args.ring_timeout,
        strategy=args.strategy,
        announcement=args.announce,
        whisper=args.whisper,
        hours=args.hours,
        timezone=args.timezone,
        after_hours=args.after_hours,
        default=args.default,
        recording=args.record,
        consent_prompt=args.consent,
        consent_opt_out=args.opt_out,
        dynamic=args.dynamic,
    )
    with _session(config) as session:
        route = admin.add_route(session, request, args.account, args.region)
        note = " (default for numbers without a route)" if route.is_default else ""
        print(f"route {route.name!r} added{note}")
    return 0


def cmd_number_add(config: Config, args: argparse.Namespace) -> int:
    request = admin.NumberRequest(
        number=args.number, label=args.label, source=args.source, route=args.route
    )
    with _session(config) as session:
        number = admin.add_number(session, request, args.account, args.region)
        print(f"tracking number {number.e164} added")
    return 0


def _vault(config: Config) -> RecordingVault:
    return RecordingVault(
        _sessions(config),
        Path(config.recordings.store_dir),
        Path(config.recordings.key_file),
        key_passphrase(config),
    )


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def cmd_recording_export(config: Config, args: argparse.Namespace) -> int:
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            seconds = _vault(config).export_wav(args.call_id, out, _actor())
    except BaseException:
        os.unlink(args.output)
        raise
    print(f"{seconds:.1f} s of audio written to {args.output} (caller left, callee right)")
    return 0


def cmd_recording_delete(config: Config, args: argparse.Namespace) -> int:
    _vault(config).delete(args.call_id, _actor())
    print(f"recording of call {args.call_id} erased")
    return 0


def cmd_keys_rotate(config: Config, _args: argparse.Namespace) -> int:
    key_id, count = _vault(config).rotate_keys(_actor())
    print(f"master key {key_id} is current; {count} recording key(s) re-wrapped")
    return 0


def cmd_keys_seal(config: Config, args: argparse.Namespace) -> int:
    passphrase = _read_password(args) or ""
    if args.password_prompt and passphrase != getpass.getpass("again: "):
        raise admin.AdminError("the passphrases differ")
    if len(passphrase) < 12:
        raise admin.AdminError("the passphrase must be at least 12 characters")
    _vault(config).seal_key_file(passphrase)
    print(
        "key file sealed; set recordings.key_passphrase (e.g. env:NAME) so that the "
        "controller can unlock it at start"
    )
    return 0


def cmd_config_render(config: Config, _args: argparse.Namespace) -> int:
    sessions = _sessions(config)
    with sessions.begin() as session:
        trunks = admin.trunk_views(session, bootstrap.secret_box(config))
    compiled = compile_routes(CallStore(sessions).routing_table(), render.dialplan_settings(config))
    path = render.write(config, trunks, compiled.text)
    for problem in compiled.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"Asterisk config written to {path}; routes compiled into {render.routes_path(config)}")
    return 0


def cmd_config_show(config: Config, _args: argparse.Namespace) -> int:
    print(render_ini(config), end="")
    return 0


def cmd_doctor(config: Config, _args: argparse.Namespace) -> int:
    return doctor.run(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description=__doc__)
    parser.add_argument(
        "--config",
        help="config file (default: $APPLIANCE_CONFIG or "
        "/etc/appliance/appliance.ini if it exists)",
    )
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Command, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    command("serve", cmd_serve, "run the controller (AMI, FastAGI, HTTP)")
    init = command("init", cmd_init, "create the data dir, secrets, database and first admin")
    init.add_argument("--admin", default="admin", help="username of the first admin")
    command("migrate", cmd_migrate, "upgrade the database schema in place")
    command("doctor", cmd_doctor, "check the installation and say what to fix")

    def password_options(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--password-stdin", action="store_true", help="read it from stdin")
        group.add_argument("--password-prompt", action="store_true", help="ask for it")

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    p = command("add", cmd_user_add, "add a user (prints a generated password)", user)
    p.add_argument("username")
    p.add_argument("--role", default="viewer", choices=admin.ROLES)
    p.add_argument("--account", type=int, help="account id (default: the agency)")
    password_options(p)

    account = sub.add_parser("account", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_account_add, "add a client account under the agency", account)
    p.add_argument("name")
    p.add_argument("--parent", type=int, help="parent account id (default: the agency)")

    trunk = sub.add_parser("trunk", help="manage SIP trunks").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_trunk_add, "add a SIP trunk", trunk)
    p.add_argument("name")
    p.add_argument("--kind", choices=("ip", "registration"), default="ip")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=5060)
    p.add_argument("--username")
    p.add_argument("--match", action="append", help="address or network calls come from")
    p.add_argument("--account", type=int)
    password_options(p)

    route = sub.add_parser("route", help="manage routes").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_route_add, "add a route: where calls ring", route)
    p.add_argument("name")
    p.add_argument("--forward", action="append", help="E.164 number to forward to")
    p.add_argument("--trunk", help="trunk to forward over")
    p.add_argument("--endpoint", action="append", help="SIP endpoint to ring")
    p.add_argument("--ring-timeout", type=int, default=30, help="seconds each attempt rings")
    p.add_argument("--strategy", choices=values(RingStrategy), default=RingStrategy.SIMULTANEOUS)
    p.add_argument("--announce", help="prompt played to the caller first, e.g. a recording notice")
    p.add_argument("--whisper", help="prompt played to whoever answers, before connecting")
    p.add_argument("--hours", help="business hours, e.g. 'mon-fri 09:00-17:00; sat 10:00-14:00'")
    p.add_argument("--timezone", default="UTC", help="time zone of the hours")
    p.add_argument("--after-hours", help="route used outside the hours")
    p.add_argument("--default", action="store_true", help="use for numbers with no route")
    p.add_argument("--record", choices=values(RecordingMode), default=RecordingMode.NEVER)
    p.add_argument("--consent", help="prompt telling the caller the call is recorded")
    p.add_argument("--opt-out", action="store_true", help="a key during --consent stops it")
    p.add_argument(
        "--dynamic",
        action="store_true",
        help="ask the controller (FastAGI) at call time; the compiled route if it cannot answer",
    )
    p.add_argument("--region", default="US", help="region for numbers without +country code")
    p.add_argument("--account", type=int)

    number = sub.add_parser("number", help="manage tracking numbers").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_number_add, "add a tracking number", number)
    p.add_argument("number")
    p.add_argument("--label")
    p.add_argument("--source", help="marketing source, e.g. 'Google Ads'")
    p.add_argument("--route", help="route its calls take (see 'appliance route add')")
    p.add_argument("--region", default="US", help="region for numbers without +country code")
    p.add_argument("--account", type=int)

    p = command("limits", cmd_account_limits, "recording storage limits of an account", account)
    p.add_argument("account_id", type=int)
    p.add_argument("--quota-mb", type=int, help="most MB of recordings to keep")
    p.add_argument("--days", type=int, help="most days to keep a recording")
    p.add_argument("--when-full", choices=("delete_oldest", "pause"), default="delete_oldest")

    apikey = sub.add_parser("apikey", help="API tokens").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_apikey_add, "create an API token for a user (shown once)", apikey)
    p.add_argument("username")

    recordings = sub.add_parser("recordings", help="call recordings").add_subparsers(
        dest="action", required=True
    )
    p = command("export", cmd_recording_export, "decrypt a recording to a WAV file", recordings)
    p.add_argument("call_id")
    p.add_argument("output", help="WAV file to write (must not exist)")
    p = command("delete", cmd_recording_delete, "erase a recording for good", recordings)
    p.add_argument("call_id")
    keys_parser = sub.add_parser("keys", help="recording master keys").add_subparsers(
        dest="action", required=True
    )
    command("rotate", cmd_keys_rotate, "new master key; re-wrap every recording key", keys_parser)
    p = command("seal", cmd_keys_seal, "seal the key file under a passphrase", keys_parser)
    password_options(p)

    cfg = sub.add_parser("config", help="configuration").add_subparsers(
        dest="action", required=True
    )
    command("render", cmd_config_render, "write the Asterisk config from the database", cfg)
    command("show", cmd_config_show, "print the effective configuration", cfg)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load(args.config)
        logging.basicConfig(
            level=config.log.level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("appliance.asterisk.ami.wire").setLevel(logging.CRITICAL)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        return int(args.func(config, args))
    except FileExistsError as exc:
        print(f"appliance: {exc.filename} already exists", file=sys.stderr)
        return 2
    except RecordingNotFound as exc:
        print(f"appliance: no recording for call {exc}", file=sys.stderr)
        return 2
    except (ConfigError, admin.AdminError, InvalidNumber, KeyProblem, RecordingError) as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        print(
            f"appliance: database error: {str(exc.orig).splitlines()[0]} "
            "(check database.url, or run 'appliance migrate')",
            file=sys.stderr,
        )
        return 2
    except IntegrityError as exc:
        print(
            f"appliance: rejected by the database: {str(exc.orig).splitlines()[0]}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        return 130
