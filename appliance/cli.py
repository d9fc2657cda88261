"""The `appliance` command. Anything wrong in what it is given ends in one line on stderr and
exit code 2; `doctor` exits 1 when it finds a problem; `serve` exits 3 when Asterisk refuses its
AMI login."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from appliance import __version__, accounts, admin, audit, bootstrap, doctor, private_file, tls
from appliance.access import DEFAULT_SCOPES, SCOPES, the_box
from appliance.asterisk import attach_commands, render
from appliance.attribution import sites
from appliance.backup import BackupError
from appliance.backup import create as backups
from appliance.backup import restore as restores
from appliance.calls import log as call_log
from appliance.calls.dialplan import compile_routes
from appliance.calls.store import CallStore
from appliance.config import Config, ConfigError, key_passphrase, load, render_ini
from appliance.conversions import admin as conversions
from appliance.conversions.platforms import amount, masked_url
from appliance.db import engine as db
from appliance.db.migrate import current_revision, upgrade
from appliance.db.models import AnalysisRule, ConversionRule, Delivery, Destination, Job
from appliance.jobs import queue as jobs
from appliance.numbers import InvalidNumber
from appliance.plugins import commands as plugin_commands
from appliance.privacy import account_deletion
from appliance.privacy import commands as privacy_commands
from appliance.recordings.container import RecordingError
from appliance.recordings.keys import KeyProblem, replace_private
from appliance.recordings.vault import RecordingNotFound, RecordingVault
from appliance.secrets import new_password, sealed_box_file
from appliance.transcription import analysis_store, models
from appliance.transcription import service as transcription
from appliance.transcription.words import SPEAKERS
from appliance.vocabulary import RecordingMode, RingStrategy, values

Command = Callable[[Config, argparse.Namespace], int]
APPLIED = "the running controller gives it to Asterisk within 5 seconds"


def cmd_serve(config: Config, _args: argparse.Namespace) -> int:
    from appliance.controller import serve

    return asyncio.run(serve(config))


def cmd_track(config: Config, _args: argparse.Namespace) -> int:
    from appliance.public_listener import serve

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
        user = admin.add_user(
            session,
            args.username,
            password,
            args.role,
            args.account,
            audit.cli_actor(),
            args.email,
        )
        print(f"user {user.username} ({user.role}) added; the password is changed at first sign-in")
    if not (args.password_stdin or args.password_prompt):
        print(f"one-time password: {password}")
    return 0


def cmd_user_passwd(config: Config, args: argparse.Namespace) -> int:
    """Set a user's password on the box (and unlock the user): typed, or a one-time one."""
    typed = _read_password(args)
    password = typed or new_password()
    with _session(config) as session:
        admin.set_user_password(
            session,
            args.username,
            password,
            temporary=typed is None,
            actor=audit.cli_actor(),
        )
    print(f"password of {args.username} set; the user's sessions have ended")
    if typed is None:
        print(f"one-time password: {password}  (changed at the next sign-in)")
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
            session,
            args.account_id,
            args.quota_mb,
            args.days,
            args.when_full,
            audit.cli_actor(),
        )
        print(
            f"account {account.id}: recordings limited to {args.quota_mb or 'any'} MB and "
            f"{args.days or 'any number of'} days; when full: {args.when_full}"
        )
    return 0


def cmd_apikey_add(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        key, token = admin.add_api_key(
            session,
            args.username,
            audit.cli_actor(),
            args.scope or DEFAULT_SCOPES,
            args.days,
            args.name,
        )
        print(f"token {key.id} for {args.username}: {key.scopes}", file=sys.stderr)
    print(f"API token for {args.username} (shown once): {token}")
    return 0


def cmd_apikey_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        print("id\tuser\tname\tscopes\tcreated\texpires\tlast used\tstate")
        for key in admin.api_keys(session):
            state = "revoked" if key.revoked_at else "active"
            print(
                "\t".join(
                    str(v)
                    for v in (
                        key.id,
                        key.user.username,
                        key.name or "-",
                        key.scopes,
                        _day(key.created_at),
                        _day(key.expires_at),
                        _day(key.last_used_at),
                        state,
                    )
                )
            )
    return 0


def _day(moment: object) -> str:
    return moment.strftime("%Y-%m-%d") if hasattr(moment, "strftime") else "-"


def cmd_apikey_revoke(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        key = admin.revoke_api_key(session, args.key_id, audit.cli_actor())
        print(f"token {key.id} of {key.user.username} revoked")
    return 0


def cmd_account_add(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        account = admin.add_account(session, args.name, args.parent, audit.cli_actor())
        print(f"account {account.id} {account.name!r} added under {account.parent_id}")
    return 0


def cmd_account_delete(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        pending = account_deletion.request(
            session, args.account_id, audit.cli_actor(), args.grace_days
        )
        print(
            f"account {pending.account_id} {pending.name!r} is disabled and will be erased "
            f"after {pending.erase_after:%Y-%m-%d %H:%M} UTC; "
            f"'appliance account undelete {pending.account_id}' cancels it until then"
        )
    return 0


def cmd_account_undelete(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        account_deletion.cancel(session, args.account_id, audit.cli_actor())
        print(f"account {args.account_id} is enabled again; nothing of it was erased")
    return 0


def cmd_account_pending(config: Config, _args: argparse.Namespace) -> int:
    with _session(config) as session:
        rows = account_deletion.pending(session)
    for p in rows:
        print(f"{p.account_id}\t{p.name}\terased after {p.erase_after:%Y-%m-%d %H:%M} UTC")
    if not rows:
        print("no account is to be deleted")
    return 0


def _managed_only(config: Config, what: str) -> None:
    """Trunks and phones live in the PJSIP file the appliance renders: none in attached mode."""
    if config.attached:
        raise admin.AdminError(
            f"asterisk.mode is attached: {what} are the site's PBX's own; add them there"
        )


def cmd_trunk_add(config: Config, args: argparse.Namespace) -> int:
    _managed_only(config, "trunks")
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
        trunk = admin.add_trunk(
            session, bootstrap.secret_box(config), request, args.account, audit.cli_actor()
        )
        print(f"trunk {trunk.name} ({trunk.kind}, {trunk.host}:{trunk.port}) added")
    print(APPLIED)
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
        route = admin.add_route(session, request, args.account, args.region, audit.cli_actor())
        note = " (default for numbers without a route)" if route.is_default else ""
        print(f"route {route.name!r} added{note}")
    return 0


ROUTE_EDITS = {  # option of 'route edit' -> setting of the route
    "rename": "name",
    "forward": "forward_to",
    "trunk": "trunk",
    "endpoint": "endpoints",
    "ring_timeout": "ring_timeout",
    "strategy": "strategy",
    "announce": "announcement",
    "whisper": "whisper",
    "hours": "hours",
    "timezone": "timezone",
    "after_hours": "after_hours",
    "default": "default",
    "record": "recording",
    "consent": "consent_prompt",
    "opt_out": "consent_opt_out",
    "dynamic": "dynamic",
}


def cmd_route_edit(config: Config, args: argparse.Namespace) -> int:
    changes: dict[str, object] = {}
    for option, setting in ROUTE_EDITS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if value in ("yes", "no") and setting in ("default", "consent_opt_out", "dynamic"):
            value = value == "yes"
        changes[setting] = "" if value == "-" else value  # '-' clears a prompt or the hours
    if not changes:
        raise admin.AdminError("nothing to change: give at least one option")
    with _session(config) as session:
        route = admin.edit_route(
            session, args.name, changes, args.account, args.region, audit.cli_actor()
        )
        print(f"route {route.name!r} changed; calls take it within 5 seconds")
    return 0


def cmd_route_show(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        route = admin.route_by_name(session, args.name, args.account)
        for key, value in dataclasses.asdict(admin.route_request(session, route)).items():
            shown = ", ".join(value) if isinstance(value, tuple | list) else value
            print(f"{key}: {_clean(str(shown)) if shown not in (None, '') else '-'}")
    return 0


def cmd_number_add(config: Config, args: argparse.Namespace) -> int:
    request = admin.NumberRequest(
        number=args.number, label=args.label, source=args.source, route=args.route
    )
    with _session(config) as session:
        number = admin.add_number(session, request, args.account, args.region, audit.cli_actor())
        print(f"tracking number {number.e164} added")
    return 0


def _vault(config: Config) -> RecordingVault:
    return RecordingVault(
        _sessions(config),
        Path(config.recordings.store_dir),
        Path(config.recordings.key_file),
        key_passphrase(config),
    )


def cmd_recording_export(config: Config, args: argparse.Namespace) -> int:
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            seconds = _vault(config).export_wav(args.call_id, out, audit.cli_actor())
    except BaseException:
        os.unlink(args.output)
        raise
    print(f"{seconds:.1f} s of audio written to {args.output} (caller left, callee right)")
    return 0


def cmd_recording_delete(config: Config, args: argparse.Namespace) -> int:
    _vault(config).delete(args.call_id, audit.cli_actor())
    print(f"recording of call {args.call_id} erased")
    return 0


def cmd_keys_rotate(config: Config, _args: argparse.Namespace) -> int:
    key_id, count = _vault(config).rotate_keys(audit.cli_actor())
    print(f"master key {key_id} is current; {count} recording key(s) re-wrapped")
    return 0


def cmd_keys_seal(config: Config, args: argparse.Namespace) -> int:
    passphrase = _read_password(args) or ""
    if args.password_prompt and passphrase != getpass.getpass("again: "):
        raise admin.AdminError("the passphrases differ")
    if len(passphrase) < 12:
        raise admin.AdminError("the passphrase must be at least 12 characters")
    box_file = config.secrets_dir / "box.key"  # both sealed, or neither
    sealed_box = sealed_box_file(box_file, passphrase, key_passphrase(config))
    _vault(config).seal_key_file(passphrase)
    replace_private(box_file, sealed_box)
    print(
        "key files sealed (recording keys and secret box); set recordings.key_passphrase "
        "(e.g. env:NAME) so that the controller can unlock them at start"
    )
    return 0


def cmd_backup(config: Config, args: argparse.Namespace) -> int:
    passphrase = _backup_passphrase(args, confirm=True)
    made = backups.backup(
        config, Path(args.archive), passphrase, force=args.force, actor=audit.cli_actor()
    )
    print(
        f"backup written to {made.path}: {made.calls} call(s), {made.recordings} "
        f"recording(s), schema {made.revision}, {made.size} bytes"
    )
    print(f"sha256 {made.sha256}")
    print("keep the passphrase apart from the archive: without it nothing can be restored")
    return 0


def cmd_restore(config: Config, args: argparse.Namespace) -> int:
    done = restores.restore(
        config,
        Path(args.archive),
        lambda: _backup_passphrase(args, confirm=False),
        force=args.force,
        config_to=Path(args.config_to) if args.config_to else None,
        actor=audit.cli_actor(),
    )
    made = done.manifest
    print(
        f"restored the backup of {made.created} (appliance {made.appliance_version}): "
        f"{done.calls} call(s), {done.recordings} recording(s)"
    )
    migrated = "" if done.revision == made.schema_revision else f" (was {made.schema_revision})"
    print(f"database at revision {done.revision}{migrated}")
    if done.aside:
        print(f"the data dir that was there is now {done.aside}: remove it once all is well")
    for setting in done.kept:
        print(f"{setting}: kept the file already in place")
    for path in done.config_written:
        print(f"config written to {path}")
    if done.config_in_archive and not done.config_written:
        print("the archive's config was not written (--config-to PATH writes it)")
    return 0


def _backup_passphrase(args: argparse.Namespace, confirm: bool) -> str:
    """From --passphrase-file, --password-stdin, or asked for at the terminal."""
    if args.passphrase_file:
        return _passphrase_file(Path(args.passphrase_file))
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not args.password_prompt and not sys.stdin.isatty():
        raise admin.AdminError("no terminal to ask for the passphrase: give --passphrase-file")
    passphrase = getpass.getpass("backup passphrase: ")
    if confirm and passphrase != getpass.getpass("again: "):
        raise admin.AdminError("the passphrases differ")
    return passphrase


def _passphrase_file(path: Path) -> str:
    try:
        passphrase = private_file.read(path, closed=0o077).decode("utf-8").rstrip("\r\n")
    except private_file.UnsafeFile as exc:
        raise admin.AdminError(str(exc)) from None
    except UnicodeDecodeError:
        raise admin.AdminError(f"{path} is not text") from None
    if not passphrase:
        raise admin.AdminError(f"{path} is empty")
    return passphrase


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Tab-separated, one line a row: for people and for cut/awk alike."""
    print("\t".join(header))
    for row in rows:
        print("\t".join("-" if v is None or v == "" else _clean(str(v)) for v in row))


def _clean(text: str) -> str:
    """Values come from callers and users: no tabs, newlines or terminal controls."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def cmd_user_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        _table(
            ("user", "role", "account", "must change password", "locked out networks"),
            [
                (u.username, u.role, u.account_id, "yes" if u.must_change_password else "no",
                 len(accounts.locked_networks(session, u)))
                for u in admin.users(session)
            ],
        )  # fmt: skip
    return 0


def cmd_user_role(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        user = admin.set_role(session, args.username, args.role, audit.cli_actor())
        print(f"{user.username} is now {user.role}")
    return 0


def cmd_user_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        admin.remove_user(session, args.username, audit.cli_actor())
    print(f"user {args.username} removed; their sessions and tokens ended")
    return 0


def cmd_trunk_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        _table(
            ("trunk", "kind", "host", "port", "username", "takes calls from"),
            [(t.name, t.kind, t.host, t.port, t.username, t.match) for t in admin.trunks(session)],
        )
    return 0


def cmd_trunk_edit(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        trunk = admin.edit_trunk(
            session,
            bootstrap.secret_box(config),
            args.name,
            audit.cli_actor(),
            host=args.host,
            port=args.port,
            match=args.match or (),
            username=args.username,
            password=_read_password(args),
        )
        print(f"trunk {trunk.name} changed; {APPLIED}")
    return 0


def _show(pairs: Sequence[tuple[str, object]]) -> None:
    for key, value in pairs:
        print(f"{key}: {'-' if value in (None, '') else _clean(str(value))}")


def cmd_trunk_show(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        trunk = next((t for t in admin.trunks(session) if t.name == args.name), None)
        if trunk is None:
            raise admin.AdminError(f"no trunk {args.name[:60]!r}")
        _show(
            [
                ("trunk", trunk.name),
                ("kind", trunk.kind),
                ("carrier", f"{trunk.host}:{trunk.port}"),
                ("username", trunk.username),
                ("password", "set (sealed)" if trunk.password_sealed else None),
                ("takes calls from", trunk.match),
                ("account", trunk.account_id),
            ]
        )
    return 0


def cmd_user_show(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        user = admin.get_user(session, args.username)
        _show(
            [
                ("user", user.username),
                ("role", user.role),
                ("account", user.account_id),
                ("e-mail", user.email),
                ("must change password", "yes" if user.must_change_password else "no"),
                ("locked out networks", " ".join(accounts.locked_networks(session, user))),
                ("two-step sign-in", "on" if user.totp_sealed else "off"),
                ("created", _day(user.created_at)),
            ]
        )
    return 0


def cmd_user_email(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        admin.set_email(session, args.username, args.email, audit.cli_actor())
    print(f"e-mail address of {args.username} set")
    return 0


def cmd_number_show(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        number = admin.number_by_e164(session, args.number, args.region)
        _show(
            [
                ("number", number.e164),
                ("account", number.account_id),
                ("label", number.label),
                ("source", number.source.name if number.source else None),
                ("route", number.route.name if number.route else None),
                ("state", "released" if number.released_at else "active"),
            ]
        )
    return 0


def cmd_endpoint_edit(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        admin.set_endpoint_label(session, args.name, args.label, audit.cli_actor())
    print(f"endpoint {args.name} changed")
    return 0


def cmd_trunk_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        admin.remove_trunk(session, args.name, audit.cli_actor())
    print(f"trunk {args.name} removed; {APPLIED}")
    return 0


def cmd_route_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        _table(
            ("route", "account", "targets", "strategy", "hours", "recording", "default"),
            [
                (
                    r.name,
                    r.account_id,
                    " ".join(t.value for t in r.targets),
                    r.strategy,
                    f"{r.hours} {r.timezone}" if r.hours else None,
                    r.recording,
                    "yes" if r.is_default else None,
                )
                for r in admin.routes(session)
            ],
        )
    return 0


def cmd_route_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        admin.remove_route(session, args.name, args.account, audit.cli_actor())
    print(f"route {args.name!r} removed")
    return 0


def cmd_number_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        _table(
            ("number", "account", "label", "source", "route", "state"),
            [
                (
                    n.e164,
                    n.account_id,
                    n.label,
                    n.source.name if n.source else None,
                    n.route.name if n.route else None,
                    "released" if n.released_at else "active",
                )
                for n in admin.numbers(session)
            ],
        )
    return 0


def cmd_number_edit(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        number = admin.edit_number(
            session,
            args.number,
            audit.cli_actor(),
            args.region,
            route=args.route,
            source=args.source,
            label=args.label,
        )
        print(f"tracking number {number.e164} changed")
    return 0


def cmd_number_release(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        admin.release_number(session, args.number, audit.cli_actor(), args.region)
    print(f"tracking number {args.number} released: it takes no calls; its calls stay")
    return 0


def cmd_source_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        _table(
            ("id", "source", "medium", "account"),
            [(x.id, x.name, x.medium, x.account_id) for x in admin.sources(session)],
        )
    return 0


def cmd_source_add(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        source = admin.add_source(session, args.name, args.medium, args.account, audit.cli_actor())
        print(f"source {source.id} {source.name!r} added")
    return 0


def cmd_source_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        source = admin.remove_source(session, args.source_id, audit.cli_actor())
        print(f"source {source.name!r} removed")
    return 0


def _site_request(args: argparse.Namespace, site: Any = None) -> sites.SiteRequest:
    """The request from the options given, the site's current settings for those not given."""

    def given(option: Any, current: Any) -> Any:
        return current if option is None else option

    return sites.SiteRequest(
        name=given(getattr(args, "rename", None), site.name if site else args.name),
        origins=tuple(given(args.origin, site.origins.split() if site else [])),
        replace=tuple(given(args.replace, site.replace_numbers.split() if site else [])),
        consent_required=given(args.consent, site.consent_required if site else False),
        hold_minutes=given(args.hold, site.hold_minutes if site else 30),
        forms=tuple(given(args.form, site.forms.split() if site else [])),
    )


def cmd_site_add(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        site = sites.add_site(session, _site_request(args), args.account, audit.cli_actor())
        tag = snippet_tag(config, site.key, site.consent_required)
        print(f"site {site.name!r} added; put this in its pages:\n{tag}")
    return 0


def snippet_tag(config: Config, key: str, consent: bool = False) -> str:
    from appliance.controller import tracking_url  # the controller's imports: only here

    waits = ' data-consent="required"' if consent else ""
    src = f"{tracking_url(config)}/t/v1/snippet.js"
    return f'<script src="{src}" data-site="{key}"{waits} async></script>'


def cmd_site_edit(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        site = sites.site_named(session, args.name)
        sites.edit_site(session, site, _site_request(args, site), audit.cli_actor())
        print(f"site {site.name!r} changed; {APPLIED}")
    return 0


def cmd_site_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        _table(
            ("site", "account", "origins", "pool", "rules"),
            [
                (s.name, s.account_id, s.origins, len(sites.pool(session, s)), len(s.rules))
                for s in sites.sites(session)
            ],
        )
    return 0


def cmd_site_show(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        site = sites.site_named(session, args.name)
        _show(
            [
                ("site", site.name),
                ("account", site.account_id),
                ("origins", site.origins),
                ("numbers swapped", site.replace_numbers),
                ("consent required", "yes" if site.consent_required else "no"),
                ("hold (minutes)", site.hold_minutes),
                ("forms tracked", site.forms or "-"),
                ("pool", " ".join(n.e164 for n in sites.pool(session, site)) or "-"),
                *[
                    (f"rule {r.id}", f"{r.field} contains {r.value!r} -> {r.number.e164}")
                    for r in site.rules
                ],
                ("snippet", snippet_tag(config, site.key, site.consent_required)),
            ]
        )
    return 0


def cmd_site_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        sites.remove_site(session, sites.site_named(session, args.name), audit.cli_actor())
    print(f"site {args.name!r} removed; its pool numbers are ordinary numbers again")
    return 0


def cmd_site_pool(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        site = sites.site_named(session, args.name)
        sites.set_pool(session, site, args.numbers, audit.cli_actor(), args.region)
        print(f"site {site.name!r}: {len(args.numbers)} pool number(s); {APPLIED}")
    return 0


def cmd_site_rule_add(config: Config, args: argparse.Namespace) -> int:
    field, _, value = args.when.partition("=")
    with _session(config) as session:
        site = sites.site_named(session, args.name)
        rule = sites.add_rule(session, site, field, value, args.number, audit.cli_actor())
        print(f"rule {rule.id} added to site {site.name!r}; {APPLIED}")
    return 0


def cmd_site_rule_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        site = sites.site_named(session, args.name)
        sites.remove_rule(session, site, args.rule_id, audit.cli_actor())
    print(f"rule {args.rule_id} removed")
    return 0


def cmd_conversion_add(config: Config, args: argparse.Namespace) -> int:
    request = conversions.RuleRequest(
        name=args.name,
        applies_to="lead" if args.leads else "call",
        answered=args.answered,
        min_talk_seconds=args.min_talk,
        first_time=args.first_time,
        source_contains=args.source,
        form=args.form,
        value=args.value,
        currency=args.currency,
    )
    with _session(config) as session:
        rule = conversions.add_rule(session, request, args.account, audit.cli_actor())
        print(f"conversion rule {rule.name!r} added")
    return 0


def _named(session: Session, model: Any, name: str, what: str) -> Any:
    """The one row of `model` with this name (rules and destinations)."""
    found = session.scalars(select(model).where(model.name == name)).all()
    if len(found) != 1:
        raise admin.AdminError(
            f"no {what} {name[:80]!r}" if not found else f"{name[:80]!r} names several {what}s"
        )
    return found[0]


def cmd_conversion_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        rows = session.scalars(select(ConversionRule).order_by(ConversionRule.name))
        _table(
            ("rule", "account", "applies to", "conditions", "value"),
            [
                (
                    r.name,
                    r.account_id,
                    r.applies_to,
                    conversions.describe(r),
                    f"{amount(r.value)} {r.currency}" if r.value is not None else None,
                )
                for r in rows
            ],
        )
    return 0


def cmd_conversion_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        conversions.remove_rule(
            session,
            _named(session, ConversionRule, args.name, "conversion rule"),
            audit.cli_actor(),
        )
    print(f"conversion rule {args.name!r} removed; its conversions stay")
    return 0


def cmd_destination_add(config: Config, args: argparse.Namespace) -> int:
    settings = dict(pair.partition("=")[::2] for pair in args.setting or [])
    secret_values: dict[str, str] = {}
    if args.secrets_stdin:
        try:
            secret_values = {str(k): str(v) for k, v in json.loads(sys.stdin.read()).items()}
        except (ValueError, AttributeError):
            raise admin.AdminError("--secrets-stdin: a JSON object of name to text") from None
    request = conversions.DestinationRequest(
        name=args.name,
        kind=args.kind,
        url=args.url,
        events=tuple(args.event or ["conversion.created"]),
        settings=settings,
        secrets=secret_values,
    )
    with _session(config) as session:
        box = bootstrap.secret_box(config)
        destination, shown = conversions.add_destination(
            session, box, request, args.account, audit.cli_actor(), config.destinations.allowed
        )
        print(f"destination {destination.name!r} added")
        if shown:
            print(f"signing secret (shown once): {shown}")
    return 0


def cmd_destination_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        rows = session.scalars(select(Destination).order_by(Destination.name))
        _table(
            ("destination", "account", "kind", "address", "events", "active"),
            [(d.name, d.account_id, d.kind, masked_url(d.url), d.events, d.active) for d in rows],
        )
    return 0


def cmd_destination_action(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        destination = _named(session, Destination, args.name, "destination")
        conversions.set_google_action(
            session, destination, args.conversion, args.action_id, audit.cli_actor()
        )
    print(f"{args.conversion!r} is uploaded as conversion action {args.action_id}")
    return 0


def cmd_destination_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        destination = _named(session, Destination, args.name, "destination")
        conversions.remove_destination(session, destination, audit.cli_actor())
    print(f"destination {args.name!r} removed, with its deliveries")
    return 0


def cmd_deliveries_list(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        query = (
            select(Delivery, Destination.name)
            .join(Destination, Destination.id == Delivery.destination_id)
            .order_by(Delivery.id.desc())
            .limit(args.limit)
        )
        if args.state:
            query = query.where(Delivery.state == args.state)
        _table(
            ("id", "destination", "event", "state", "attempts", "last status", "last error"),
            [
                (d.id, name, d.event, d.state, d.attempts, d.last_status, d.last_error)
                for d, name in session.execute(query)
            ],
        )
    return 0


def cmd_deliveries_retry(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        delivery = session.get(Delivery, args.delivery_id)
        if delivery is None:
            raise admin.AdminError(f"no delivery {args.delivery_id}")
        conversions.retry(session, delivery, audit.cli_actor())
    print(f"delivery {args.delivery_id} goes out again now")
    return 0


def cmd_models_install(config: Config, args: argparse.Namespace) -> int:
    model_dir = Path(config.transcription.model_dir)
    if Path(args.archive).exists() or "/" in args.archive or args.name:
        model = models.install(Path(args.archive), model_dir, args.name)
    else:  # an official model's name: downloaded with its checksum checked
        from appliance.transcription import download

        list_url = config.transcription.model_list_url
        print(f"downloading {args.archive} (model list: {list_url})")
        model = download.download_and_install(list_url, args.archive, model_dir)
    print(f"model {model.name!r} installed in {model.path} ({model.bytes // 1024**2} MiB)")
    return 0


def cmd_models_list(config: Config, _args: argparse.Namespace) -> int:
    found = models.installed(Path(config.transcription.model_dir))
    _table(("model", "MiB", "folder"), [(m.name, m.bytes // 1024**2, m.path) for m in found])
    return 0


def cmd_models_remove(config: Config, args: argparse.Namespace) -> int:
    models.remove(Path(config.transcription.model_dir), args.name)
    print(f"model {args.name!r} removed")
    return 0


def cmd_transcribe(config: Config, args: argparse.Namespace) -> int:
    from appliance.transcription import workers

    return workers.serve(config, args.workers)


def cmd_transcripts_queue(config: Config, args: argparse.Namespace) -> int:
    reason = transcription.off_reason(config)
    with _session(config) as session:
        try:
            queued = transcription.queue_recordings(session, args.call_ids, args.again)
        except LookupError as exc:
            print(f"appliance: {exc}", file=sys.stderr)
            return 2
        session.commit()
    print(f"{queued} transcription(s) queued")
    if reason:
        print(f"note: {reason}; they wait for that")
    return 0


def cmd_transcripts_show(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        found = transcription.read(session, args.call_id)
        state = transcription.progress(session, args.call_id)
        if found is None:
            detail = f": {state.detail}" if state.detail else ""
            print(f"no transcript for call {args.call_id} ({state.state}{detail})")
            return 1
        audit.record(session, audit.cli_actor(), "transcript.read", subject=args.call_id)
        session.commit()
    for turn in found.turns:
        who = SPEAKERS[turn.speaker]
        print(f"[{turn.start:7.2f}] {who}: {_clean(turn.text)}")
    return 0


def cmd_analysis_rule_add(config: Config, args: argparse.Namespace) -> int:
    request = analysis_store.RuleRequest(
        args.tag, args.phrase, args.speaker, args.points, args.category
    )
    with _session(config) as session:
        account = admin.get_account(session, args.account)
        queued = analysis_store.add_rule(session, account.id, request, audit.cli_actor())
    print(f"rule {request.tag.strip().lower()} saved; {queued} call(s) queued to be analysed again")
    return 0


def cmd_analysis_rule_list(config: Config, _args: argparse.Namespace) -> int:
    with _session(config) as session:
        rows = session.scalars(
            select(AnalysisRule).order_by(AnalysisRule.account_id, AnalysisRule.tag)
        )
        _table(
            ("account", "tag", "speaker", "points", "category", "phrases"),
            [
                (r.account_id, r.tag, r.speaker, f"{r.points:+d}", r.category or "",
                 _clean(" | ".join(r.phrases.splitlines())))
                for r in rows
            ],
        )  # fmt: skip
    return 0


def cmd_analysis_rule_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        account = admin.get_account(session, args.account)
        queued = analysis_store.remove_rule(session, account.id, args.tag, audit.cli_actor())
    print(f"rule {args.tag} removed; {queued} call(s) queued to be analysed again")
    return 0


def cmd_analysis_rerun(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        account = admin.get_account(session, args.account)
        queued = analysis_store.requeue(session, account.id)
    print(f"{queued} call(s) queued to be analysed again")
    return 0


def cmd_jobs_list(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        query = select(Job).order_by(Job.id.desc()).limit(args.limit)
        if args.state:
            query = query.where(Job.state == args.state)
        _table(
            ("id", "kind", "about", "state", "attempts", "last error"),
            [
                (j.id, j.kind, j.key, j.state, j.attempts, j.last_error)
                for j in session.scalars(query)
            ],
        )
    return 0


def cmd_jobs_retry(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        try:
            job = jobs.retry(session, args.job_id)
        except ValueError as exc:
            raise admin.AdminError(str(exc)) from None
        audit.record(session, audit.cli_actor(), "job.retry", f"{job.kind} {job.key}"[:64])
    print(f"job {args.job_id} is queued again")
    return 0


def cmd_calls_list(config: Config, args: argparse.Namespace) -> int:
    fields = {"from": args.since, "to": args.until, "number": args.number}
    fields |= {"source": args.source, "disposition": args.disposition, "q": args.search}
    wanted = call_log.parse_filter({k: v for k, v in fields.items() if v})
    with _sessions(config)() as session:
        box = the_box(session, audit.cli_actor())
        rows, _ = call_log.page(session, box, wanted, None, args.limit)
    _table(
        ("call", "started (UTC)", "caller", "name", "dialled", "source", "route", "outcome",
         "talk s", "recorded"),
        [
            (r.id, r.started_at.strftime("%Y-%m-%d %H:%M:%S"), r.caller_number, r.caller_name,
             r.dialled, r.source, r.route, r.disposition,
             None if r.talk_seconds is None else round(r.talk_seconds),
             "yes" if r.recorded else "no")
            for r in rows
        ],
    )  # fmt: skip
    return 0


def cmd_endpoint_add(config: Config, args: argparse.Namespace) -> int:
    _managed_only(config, "phones")
    with _session(config) as session:
        endpoint, password = admin.add_endpoint(
            session,
            bootstrap.secret_box(config),
            args.name,
            args.label,
            args.account,
            audit.cli_actor(),
        )
        print(f"endpoint {endpoint.name} added: set up the phone with")
    _phone_settings(config, args.name, password)
    return 0


def _phone_settings(config: Config, name: str, password: str) -> None:
    print(f"  SIP server: {config.asterisk.sip_host}:{config.asterisk.sip_port} (UDP)")
    print(f"  user name and auth name: {name}")
    print(f"  password (shown once): {password}")
    print(APPLIED)


def cmd_endpoint_list(config: Config, _args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        _table(
            ("endpoint", "account", "label", "created"),
            [(e.name, e.account_id, e.label, _day(e.created_at)) for e in admin.endpoints(session)],
        )
    return 0


def cmd_endpoint_passwd(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        password = admin.new_endpoint_password(
            session, bootstrap.secret_box(config), args.name, audit.cli_actor()
        )
    print(f"endpoint {args.name} has a new password:")
    _phone_settings(config, args.name, password)
    return 0


def cmd_endpoint_remove(config: Config, args: argparse.Namespace) -> int:
    with _session(config) as session:
        admin.remove_endpoint(session, args.name, audit.cli_actor())
    print(f"endpoint {args.name} removed; {APPLIED}")
    return 0


def cmd_config_render(config: Config, _args: argparse.Namespace) -> int:
    render.refuse_if_attached(config)
    sessions = _sessions(config)
    box = bootstrap.existing_secret_box(config)
    with sessions.begin() as session:
        trunks = admin.trunk_views(session, box)
        endpoints = admin.endpoint_views(session, box)
    compiled = compile_routes(CallStore(sessions).routing_table(), render.dialplan_settings(config))
    path = render.write(config, trunks, compiled.text, endpoints)
    for problem in compiled.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"Asterisk config written to {path}; routes compiled into {render.routes_path(config)}")
    return 0


def cmd_tls_install(config: Config, args: argparse.Namespace) -> int:
    tls.install(config, Path(args.cert), Path(args.key))
    with _session(config) as session:
        audit.record(session, audit.cli_actor(), "tls.install", detail=str(args.cert))
    print("certificate installed; restart the controller to serve it")
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
    command("track", cmd_track, "run the public tracking listener (website snippets)")
    init = command("init", cmd_init, "create the data dir, secrets, database and first admin")
    init.add_argument("--admin", default="admin", help="username of the first admin")
    command("migrate", cmd_migrate, "upgrade the database schema in place")
    command("doctor", cmd_doctor, "check the installation and say what to fix")

    def password_options(p: argparse.ArgumentParser) -> Any:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--password-stdin", action="store_true", help="read it from stdin")
        group.add_argument("--password-prompt", action="store_true", help="ask for it")
        return group

    def passphrase_options(p: argparse.ArgumentParser) -> None:
        """A backup passphrase: from a file, stdin, or asked for (the default)."""
        password_options(p).add_argument(
            "--passphrase-file", metavar="FILE", help="read it from FILE (mode 0600)"
        )

    p = command("backup", cmd_backup, "write one archive of this box (while calls go on)")
    p.add_argument("archive", help="file to write; refused if it exists, unless --force")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    passphrase_options(p)
    p = command("restore", cmd_restore, "rebuild this box from a backup archive")
    p.add_argument("archive")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a data dir that is not empty (moved aside, never merged)",
    )
    p.add_argument(
        "--config-to", metavar="PATH", help="write the archive's config (and drop-ins) to PATH"
    )
    passphrase_options(p)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    p = command("add", cmd_user_add, "add a user (prints a generated password)", user)
    p.add_argument("username")
    p.add_argument("--role", default="analyst", choices=admin.ROLES)
    p.add_argument("--account", type=int, help="account id (default: the agency)")
    p.add_argument("--email", help="for password resets and (owners, admins) alerts")
    password_options(p)
    command("list", cmd_user_list, "list users", user)
    p = command("show", cmd_user_show, "show a user", user)
    p.add_argument("username")
    p = command("email", cmd_user_email, "set a user's e-mail address ('' for none)", user)
    p.add_argument("username")
    p.add_argument("email")
    p = command("role", cmd_user_role, "change a user's role", user)
    p.add_argument("username")
    p.add_argument("role", choices=admin.ROLES)
    p = command("remove", cmd_user_remove, "remove a user (never the last owner)", user)
    p.add_argument("username")
    p = command(
        "passwd",
        cmd_user_passwd,
        "set a user's password and unlock it (a one-time one unless typed)",
        user,
    )
    p.add_argument("username")
    password_options(p)

    account = sub.add_parser("account", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_account_add, "add a client account under the agency", account)
    p.add_argument("name")
    p.add_argument("--parent", type=int, help="parent account id (default: the agency)")
    p = command("delete", cmd_account_delete, "disable a client account now, erase it after "
                "a grace period", account)  # fmt: skip
    p.add_argument("account_id", type=int)
    grace = account_deletion.GRACE_DAYS
    p.add_argument("--grace-days", type=int, default=grace,
                   help=f"days before it is erased (default {grace})")  # fmt: skip
    p = command("undelete", cmd_account_undelete, "cancel a deletion in its grace period",
                account)  # fmt: skip
    p.add_argument("account_id", type=int)
    command("pending", cmd_account_pending, "list the accounts to be erased, and when", account)

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

    command("list", cmd_trunk_list, "list trunks (never their passwords)", trunk)
    p = command("show", cmd_trunk_show, "show a trunk (never its password)", trunk)
    p.add_argument("name")
    p = command("edit", cmd_trunk_edit, "change a trunk's carrier, addresses or login", trunk)
    p.add_argument("name")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--match", action="append", help="address or network calls come from")
    p.add_argument("--username")
    password_options(p)
    p = command("remove", cmd_trunk_remove, "remove a trunk no route forwards over", trunk)
    p.add_argument("name")

    endpoint = sub.add_parser("endpoint", help="desk and soft phones").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_endpoint_add, "add a phone; prints its SIP password once", endpoint)
    p.add_argument("name", help="its SIP user name, e.g. desk-1")
    p.add_argument("--label", help="e.g. 'Front desk, room 2'")
    p.add_argument("--account", type=int)
    command("list", cmd_endpoint_list, "list phones (never their passwords)", endpoint)
    p = command("edit", cmd_endpoint_edit, "change a phone's label", endpoint)
    p.add_argument("name")
    p.add_argument("--label", required=True)
    p = command("passwd", cmd_endpoint_passwd, "give a phone a new password", endpoint)
    p.add_argument("name")
    p = command("remove", cmd_endpoint_remove, "remove a phone no route rings", endpoint)
    p.add_argument("name")

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

    command("list", cmd_route_list, "list routes", route)
    p = command("show", cmd_route_show, "show everything about a route", route)
    p.add_argument("name")
    p.add_argument("--account", type=int)
    p = command("edit", cmd_route_edit, "change some of a route's settings", route)
    p.add_argument("name")
    p.add_argument("--rename", help="a new name")
    p.add_argument("--forward", action="append", help="E.164 number to forward to (replaces)")
    p.add_argument("--trunk")
    p.add_argument("--endpoint", action="append", help="SIP endpoint to ring (replaces)")
    p.add_argument("--ring-timeout", type=int)
    p.add_argument("--strategy", choices=values(RingStrategy))
    p.add_argument("--announce", help="'-' for none")
    p.add_argument("--whisper", help="'-' for none")
    p.add_argument("--hours", help="'-' for always open")
    p.add_argument("--timezone")
    p.add_argument("--after-hours", help="'-' for none")
    p.add_argument("--default", choices=("yes", "no"))
    p.add_argument("--record", choices=values(RecordingMode))
    p.add_argument("--consent", help="'-' for none")
    p.add_argument("--opt-out", choices=("yes", "no"))
    p.add_argument("--dynamic", choices=("yes", "no"))
    p.add_argument("--region", default="US")
    p.add_argument("--account", type=int)
    p = command("remove", cmd_route_remove, "remove a route no number takes", route)
    p.add_argument("name")
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

    command("list", cmd_number_list, "list tracking numbers", number)
    p = command("show", cmd_number_show, "show a tracking number", number)
    p.add_argument("number")
    p.add_argument("--region", default="US")
    p = command("edit", cmd_number_edit, "change a number's route, source or label", number)
    p.add_argument("number")
    p.add_argument("--route")
    p.add_argument("--source", help="'' for none")
    p.add_argument("--label", help="'' for none")
    p.add_argument("--region", default="US")
    p = command("release", cmd_number_release, "stop taking calls on a number", number)
    p.add_argument("number")
    p.add_argument("--region", default="US")

    source = sub.add_parser("source", help="marketing sources").add_subparsers(
        dest="action", required=True
    )
    command("list", cmd_source_list, "list marketing sources", source)
    p = command("add", cmd_source_add, "add a marketing source", source)
    p.add_argument("name")
    p.add_argument("--medium", help="e.g. cpc, print, radio")
    p.add_argument("--account", type=int)
    p = command("remove", cmd_source_remove, "remove a source no number has", source)
    p.add_argument("source_id", type=int)

    site = sub.add_parser("site", help="websites showing tracking numbers").add_subparsers(
        dest="action", required=True
    )

    def site_options(p: argparse.ArgumentParser, adding: bool) -> None:
        p.add_argument("name")
        p.add_argument(
            "--origin",
            action="append",
            required=adding,
            help="https://host[:port] of its pages (repeat for each)",
        )
        p.add_argument(
            "--replace",
            action="append",
            required=adding,
            help="a number its pages show, to be swapped (repeat for each)",
        )
        consent = p.add_mutually_exclusive_group()
        consent.add_argument("--consent", action="store_true", default=None, help="need consent")
        consent.add_argument("--no-consent", dest="consent", action="store_false")
        p.add_argument("--hold", type=int, help="minutes a pool number stays after the last beat")
        p.add_argument("--form", action="append", help="name or id of a form to track")

    p = command("add", cmd_site_add, "add a website and print its snippet", site)
    site_options(p, adding=True)
    p.add_argument("--account", type=int)
    p = command("edit", cmd_site_edit, "change a website's settings", site)
    site_options(p, adding=False)
    p.add_argument("--rename")
    command("list", cmd_site_list, "list websites", site)
    p = command("show", cmd_site_show, "show a website, its pool, rules and snippet", site)
    p.add_argument("name")
    p = command("remove", cmd_site_remove, "remove a website and its visits", site)
    p.add_argument("name")
    p = command("pool", cmd_site_pool, "set the numbers of a website's pool", site)
    p.add_argument("name")
    p.add_argument("numbers", nargs="*")
    p.add_argument("--region", default="US")
    rule = command("rule", cmd_site_rule_add, "swap rules", site).add_subparsers(
        dest="rule_action", required=True
    )
    p = command("add", cmd_site_rule_add, "visits whose FIELD contains TEXT see NUMBER", rule)
    p.add_argument("name")
    p.add_argument("when", help="FIELD=TEXT, FIELD one of " + ", ".join(sites.RULE_FIELDS))
    p.add_argument("number")
    p = command("remove", cmd_site_rule_remove, "remove a swap rule", rule)
    p.add_argument("name")
    p.add_argument("rule_id", type=int)

    conversion = sub.add_parser("conversion", help="conversion rules").add_subparsers(
        dest="action", required=True
    )
    p = command("add", cmd_conversion_add, "add a rule: calls or leads that convert", conversion)
    p.add_argument("name", help="the conversion's name, as the ad platforms know it")
    p.add_argument("--leads", action="store_true", help="a rule for form leads (else calls)")
    p.add_argument("--answered", action="store_true", help="only answered calls")
    p.add_argument("--min-talk", type=int, help="at least this many seconds of talk")
    p.add_argument("--first-time", action="store_true", help="only first-time callers")
    p.add_argument("--source", help="only when the source contains this text")
    p.add_argument("--form", help="only leads of this form")
    p.add_argument("--value", type=float)
    p.add_argument("--currency", default="USD")
    p.add_argument("--account", type=int)
    command("list", cmd_conversion_list, "list conversion rules", conversion)
    p = command("remove", cmd_conversion_remove, "remove a conversion rule", conversion)
    p.add_argument("name")

    destination = sub.add_parser(
        "destination", help="webhooks and ad platforms that receive events"
    ).add_subparsers(dest="action", required=True)
    p = command("add", cmd_destination_add, "add a webhook or an ad platform", destination)
    p.add_argument("name")
    p.add_argument("kind", choices=conversions.KINDS)
    p.add_argument("--url", help="a webhook's https:// address")
    p.add_argument("--event", action="append", help="an event to send (repeat): one of "
                   f"{', '.join(conversions.EVENTS)}; default: conversion.created")  # fmt: skip
    p.add_argument("--setting", action="append", help="NAME=VALUE, e.g. pixel_id=123")
    p.add_argument(
        "--secrets-stdin", action="store_true", help="read its tokens as a JSON object on stdin"
    )
    p.add_argument("--account", type=int)
    command("list", cmd_destination_list, "list destinations", destination)
    p = command(
        "action", cmd_destination_action, "map a conversion to a Google Ads action", destination
    )
    p.add_argument("name")
    p.add_argument("conversion")
    p.add_argument("action_id")
    p = command("remove", cmd_destination_remove, "remove a destination", destination)
    p.add_argument("name")

    deliveries = sub.add_parser("deliveries", help="the outbox").add_subparsers(
        dest="action", required=True
    )
    p = command("list", cmd_deliveries_list, "the latest deliveries", deliveries)
    p.add_argument("--state", choices=("pending", "delivered", "parked"))
    p.add_argument("--limit", type=int, default=50)
    p = command("retry", cmd_deliveries_retry, "send a parked delivery again", deliveries)
    p.add_argument("delivery_id", type=int)

    models_parser = sub.add_parser("models", help="Vosk speech models").add_subparsers(
        dest="action", required=True
    )
    p = command(
        "install", cmd_models_install, "install a model from its archive, or by name", models_parser
    )
    p.add_argument(
        "archive",
        help="an official Vosk model archive (.zip or .tar.gz), or an official model's name "
        "to download (its checksum checked)",
    )
    p.add_argument("--name", help="install it under this name (default: its folder's)")
    command("list", cmd_models_list, "list installed models", models_parser)
    p = command("remove", cmd_models_remove, "remove an installed model", models_parser)
    p.add_argument("name")

    p = command("transcribe", cmd_transcribe, "run the transcription workers", sub)
    p.add_argument("--workers", type=int, help="worker processes (default: transcription.workers)")
    transcripts = sub.add_parser("transcripts", help="call transcripts").add_subparsers(
        dest="action", required=True
    )
    p = command("queue", cmd_transcripts_queue, "transcribe recordings (again)", transcripts)
    p.add_argument("call_ids", nargs="*", help="these calls (default: every recording without one)")
    p.add_argument("--again", action="store_true", help="also those transcribed already")
    p = command("show", cmd_transcripts_show, "print a call's dialogue", transcripts)
    p.add_argument("call_id")

    analysis_parser = sub.add_parser("analysis", help="call analysis").add_subparsers(
        dest="action", required=True
    )
    rules_parser = analysis_parser.add_parser("rule", help="phrase rules").add_subparsers(
        dest="rule_action", required=True
    )
    p = command("add", cmd_analysis_rule_add, "add or replace a tag's phrase rule", rules_parser)
    p.add_argument("tag", help="e.g. appointment")
    p.add_argument("--phrase", action="append", required=True, help="a word or phrase (repeat)")
    p.add_argument("--speaker", choices=("any", "caller", "answerer"), default="any")
    p.add_argument("--points", type=int, default=0, help="on the lead score, -100 to 100")
    p.add_argument("--category", help="e.g. sales, support; spam flags the call as spam")
    p.add_argument("--account", type=int, help="account id (default: the agency)")
    command("list", cmd_analysis_rule_list, "list the phrase rules", rules_parser)
    p = command("remove", cmd_analysis_rule_remove, "remove a tag's rule", rules_parser)
    p.add_argument("tag")
    p.add_argument("--account", type=int, help="account id (default: the agency)")
    p = command("rerun", cmd_analysis_rerun, "analyse an account's calls again", analysis_parser)
    p.add_argument("--account", type=int, help="account id (default: the agency)")

    jobs_parser = sub.add_parser("jobs", help="persistent jobs").add_subparsers(
        dest="action", required=True
    )
    p = command("list", cmd_jobs_list, "the latest jobs", jobs_parser)
    p.add_argument("--state", choices=("queued", "running", "done", "parked"))
    p.add_argument("--limit", type=int, default=50)
    p = command("retry", cmd_jobs_retry, "queue a parked job again", jobs_parser)
    p.add_argument("job_id", type=int)

    calls = sub.add_parser("calls", help="the call log").add_subparsers(
        dest="action", required=True
    )
    p = command("list", cmd_calls_list, "the latest calls, newest first", calls)
    p.add_argument("--from", dest="since", help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (UTC)")
    p.add_argument("--number", help="digits of the dialled or the caller's number")
    p.add_argument("--source")
    p.add_argument("--disposition", choices=call_log.DISPOSITIONS)
    p.add_argument("--search", help="caller name or number, route")
    p.add_argument("--limit", type=int, default=50, help="at most 200")

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
    p.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help=f"what the token may do, within its user's role (default: {' '.join(DEFAULT_SCOPES)})",
    )
    p.add_argument("--days", type=int, help="the token ends after this many days")
    p.add_argument("--name", help="what the token is for")
    command("list", cmd_apikey_list, "list API tokens (never the tokens themselves)", apikey)
    p = command("revoke", cmd_apikey_revoke, "revoke an API token at once", apikey)
    p.add_argument("key_id", type=int)

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

    tls_parser = sub.add_parser("tls", help="the admin UI's certificate").add_subparsers(
        dest="action", required=True
    )
    p = command("install", cmd_tls_install, "serve your own certificate and key", tls_parser)
    p.add_argument("cert", help="PEM certificate (with its chain)")
    p.add_argument("key", help="PEM private key")

    cfg = sub.add_parser("config", help="configuration").add_subparsers(
        dest="action", required=True
    )
    command("render", cmd_config_render, "write the Asterisk config from the database", cfg)
    command("show", cmd_config_show, "print the effective configuration", cfg)
    privacy_commands.register(sub, command)
    attach_commands.register(sub, command)
    plugin_commands.register(sub, command)
    return parser


QUIETER = {  # logger -> the least level it logs while a command runs
    "appliance.asterisk.ami.wire": logging.CRITICAL,
    "alembic": logging.WARNING,
    "apscheduler": logging.WARNING,  # a line a run is noise
}


@contextmanager
def logging_to_stderr(level: str) -> Iterator[None]:
    """Log lines go to the stderr of the moment while the command runs, and the logging set-up
    is put back after it: main() called twice in one process neither stacks handlers nor writes
    to a stream that a caller has since closed or swapped."""
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    levels = {logger: logger.level for logger in (root, *map(logging.getLogger, QUIETER))}
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, least in QUIETER.items():
        logging.getLogger(name).setLevel(least)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for logger, saved in levels.items():
            logger.setLevel(saved)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load(args.config)
        with logging_to_stderr(config.log.level):
            return int(args.func(config, args))
    except FileExistsError as exc:
        print(f"appliance: {exc.filename} already exists", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        print(f"appliance: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except RecordingNotFound as exc:
        print(f"appliance: no recording for call {exc}", file=sys.stderr)
        return 2
    except (
        ConfigError,
        admin.AdminError,
        InvalidNumber,
        KeyProblem,
        models.ModelError,
        analysis_store.RuleError,
        RecordingError,
        call_log.BadFilter,
        BackupError,
    ) as exc:
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
