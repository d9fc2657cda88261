"""`appliance retention show|set|apply` and `appliance hold account|call`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.admin import AdminError
from appliance.asterisk import render
from appliance.config import Config, key_passphrase
from appliance.db import engine as db
from appliance.db.models import Account, Call
from appliance.privacy import retention, retention_admin
from appliance.privacy.retention_job import PrivacyRetention
from appliance.recordings.vault import RecordingVault

# option -> the account setting it changes
OPTIONS = {label: name for name, label in retention.LABELS.items()}


def _sessions(config: Config) -> sessionmaker[Session]:
    return db.session_factory(db.make_engine(config.database.url))


def days(text: str) -> int | None:
    try:
        return retention.parse_days(text)
    except retention.RetentionRefused as exc:
        raise AdminError(str(exc)) from None


def cmd_show(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        if args.account is None:
            accounts = list(session.scalars(select(Account).order_by(Account.id)))
        else:
            accounts = [retention_admin.policy(session, args.account)[0]]
        for account in accounts:
            _print(account)
    box = config.privacy
    print(
        f"the box: audit log {retention.describe(box.audit_days or None)}, "
        f"unreconciled CDR lines {retention.describe(box.log_days or None)}"
    )
    return 0


def cmd_set(config: Config, args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {
        name: days(getattr(args, label)) for label, name in OPTIONS.items() if hasattr(args, label)
    }
    if args.call_expiry is not None:
        settings["call_expiry"] = args.call_expiry
    if not settings:
        raise AdminError("nothing to change: give at least one option")
    with _sessions(config).begin() as session:
        retention_admin.set_retention(session, args.account, audit.cli_actor(), **settings)
        _print(retention_admin.policy(session, args.account)[0])
    return 0


def _print(account: Account) -> None:
    print(f"account {account.id} ({_clean(account.name)}):")
    for what, how_long in retention_admin.summary(retention.of(account)):
        print(f"  {what}: {how_long}")


def cmd_apply(config: Config, args: argparse.Namespace) -> int:
    sessions = _sessions(config)
    vault = RecordingVault(
        sessions,
        Path(config.recordings.store_dir),
        Path(config.recordings.key_file),
        key_passphrase(config),
    )
    job = PrivacyRetention(
        sessions,
        vault,
        render.cdr_dir(config),
        config.privacy.log_days,
        config.privacy.audit_days,
    )
    report = job.apply(dry_run=args.dry_run)
    prefix = "would remove: " if args.dry_run else "removed: "
    for line in report.lines():
        print(prefix + line)
    return 0


def cmd_hold_account(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config).begin() as session:
        held = None if args.release else args.days
        retention_admin.hold_account(session, args.account, held, audit.cli_actor())
    shown = "released" if held is None else f"{held} days: nothing younger is removed"
    print(f"account {args.account}: legal hold {shown}")
    return 0


def cmd_hold_call(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config).begin() as session:
        call = session.get(Call, args.call_id)
        retention_admin.hold_call(session, call, not args.release, audit.cli_actor())
    print(f"call {args.call_id}: " + ("released from legal hold" if args.release else "held"))
    return 0


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:80]


def register(sub: Any, command: Any) -> None:
    noun = sub.add_parser("retention", help="how long each kind of data is kept")
    verbs = noun.add_subparsers(dest="action", required=True)
    p = command("show", cmd_show, "an account's retention (all accounts without one)", verbs)
    p.add_argument("account", type=int, nargs="?")
    p = command("set", cmd_set, "change an account's retention (days, or 'forever')", verbs)
    p.add_argument("account", type=int)
    for label in OPTIONS:
        p.add_argument(f"--{label}", default=argparse.SUPPRESS, metavar="DAYS")
    p.add_argument("--call-expiry", choices=retention.EXPIRIES, help="what an expired call becomes")
    p = command("apply", cmd_apply, "remove what has expired now (the daily job)", verbs)
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")

    hold = sub.add_parser("hold", help="legal hold: keep data whatever the retention")
    kinds = hold.add_subparsers(dest="action", required=True)
    p = command("account", cmd_hold_account, "keep all of an account younger than N days", kinds)
    p.add_argument("account", type=int)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--days", type=int, help="days nothing younger is removed")
    which.add_argument("--release", action="store_true", help="end the hold")
    p = command("call", cmd_hold_call, "keep a call and its recording, transcript ...", kinds)
    p.add_argument("call_id")
    p.add_argument("--release", action="store_true", help="end the hold")
