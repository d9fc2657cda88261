"""`appliance person find|export|erase|correct SUBJECT`: the rights of a data subject at the
box's command line. SUBJECT is a phone number in any format, an e-mail address, or
visitor:ID; --account narrows to one account (default: the agency and all its clients)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit, bootstrap
from appliance.access import Principal
from appliance.admin import AdminError
from appliance.config import Config, key_passphrase
from appliance.db import engine as db
from appliance.db.models import Account
from appliance.privacy import correction, erasure, export
from appliance.privacy.person import find
from appliance.privacy.subject import SYNTAX, InvalidSubject, Subject, parse
from appliance.recordings.vault import RecordingVault


def register(sub: Any, command: Any) -> None:
    about = "find, export, correct or erase what is stored about a person"
    verbs = sub.add_parser("person", help=about, description=about).add_subparsers(
        dest="verb", required=True
    )
    p = command("find", cmd_find, "count what is stored about a person, by kind", verbs)
    _subject_options(p)
    p = command("export", cmd_export, "write everything about a person to a new zip file", verbs)
    _subject_options(p)
    p.add_argument("file", type=Path, help="the archive to create (never overwritten)")
    p = command("erase", cmd_erase, "erase everything about a person (see it first without --yes)",
                verbs)  # fmt: skip
    _subject_options(p, required=False)
    p.add_argument("--yes", action="store_true", help="erase; without it, only show what would go")
    p.add_argument("--resume", action="store_true", help="finish erasures that were interrupted")
    p = command("correct", cmd_correct, "set a person's name or number right on their records",
                verbs)  # fmt: skip
    _subject_options(p)
    p.add_argument("--name", help="the right name")
    p.add_argument("--number", help="the right phone number")


def _subject_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("subject", nargs=None if required else "?", metavar="SUBJECT", help=SYNTAX)
    p.add_argument("--account", type=int, help="only this account (default: every account)")
    p.add_argument("--region", default="US", help="country of numbers given without +")


def _sessions(config: Config) -> sessionmaker[Session]:
    return db.session_factory(db.make_engine(config.database.url))


def _vault(config: Config, sessions: sessionmaker[Session]) -> RecordingVault:
    recordings = config.recordings
    return RecordingVault(sessions, Path(recordings.store_dir), Path(recordings.key_file),
                          key_passphrase(config))  # fmt: skip


def _who(session: Session, args: argparse.Namespace) -> tuple[Principal, Subject]:
    try:
        subject = parse(args.subject or "", args.region)
    except InvalidSubject as exc:
        raise AdminError(str(exc)) from None
    account = args.account
    if account is None:
        account = session.scalar(select(Account.id).where(Account.parent_id.is_(None)).limit(1))
    return erasure.scope_of(session, account or 0, audit.cli_actor()), subject


def cmd_find(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config)() as session:
        principal, subject = _who(session, args)
        found = find(session, principal, subject)
    if found.empty():
        print(f"nothing is stored about {subject}")
        return 0
    for kind, count in found.counts().items():
        print(f"{kind:<12} {count}")
    return 0


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    sessions = _sessions(config)
    with sessions() as session:
        principal, subject = _who(session, args)
    vault = _vault(config, sessions)
    counts = export.to_file(args.file, sessions, vault, principal, subject, audit.cli_actor())
    shown = ", ".join(
        f"{n} {kind}" for kind, n in counts.items() if n and not kind.startswith("held")
    )
    print(f"{args.file} written ({shown}); it holds personal data: hand it over, then delete it")
    return 0


def cmd_erase(config: Config, args: argparse.Namespace) -> int:
    sessions = _sessions(config)
    if args.resume:
        return _resume(config, sessions)
    with sessions() as session:
        principal, subject = _who(session, args)
        found = find(session, principal, subject)
    if not args.yes:
        if found.empty():
            raise AdminError(f"nothing is stored about {subject} in these accounts")
        for kind, count in found.counts().items():
            print(f"{kind:<12} {count}")
        print("nothing erased yet: run again with --yes to erase this")
        return 0
    box = bootstrap.secret_box(config)
    request_id = erasure.start(sessions, box, principal, subject, audit.cli_actor())
    print(erasure.run(sessions, _vault(config, sessions), box, request_id))
    return 0


def _resume(config: Config, sessions: sessionmaker[Session]) -> int:
    waiting = erasure.pending(sessions)
    if not waiting:
        print("no erasure is waiting to be finished")
        return 0
    box, vault = bootstrap.secret_box(config), _vault(config, sessions)
    for request_id in waiting:
        print(f"erasure {request_id}: {erasure.run(sessions, vault, box, request_id)}")
    return 0


def cmd_correct(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config).begin() as session:
        principal, subject = _who(session, args)
        change = correction.checked(args.name, args.number, args.region)
        counts = correction.correct(session, principal, subject, change, audit.cli_actor())
    print(f"corrected {counts['calls']} call(s) and {counts['leads']} lead(s)")
    return 0
