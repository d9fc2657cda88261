"""`appliance restrict add|list|remove`: the callers an account must never record, transcribe,
analyse or send to an ad platform. The running controller compiles the list into Asterisk's
dialplan within one refresh (5 seconds)."""

from __future__ import annotations

import argparse
from typing import Any

from appliance import audit
from appliance.config import Config
from appliance.db import engine as db
from appliance.privacy import restricted_store


def _sessions(config: Config) -> Any:
    return db.session_factory(db.make_engine(config.database.url))


def cmd_add(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config).begin() as session:
        e164 = restricted_store.add(session, args.account_id, args.number, audit.cli_actor())
    print(
        f"{e164} restricted for account {args.account_id}; the running controller gives it to "
        "Asterisk within 5 seconds"
    )
    return 0


def cmd_remove(config: Config, args: argparse.Namespace) -> int:
    with _sessions(config).begin() as session:
        e164 = restricted_store.remove(session, args.account_id, args.number, audit.cli_actor())
    print(f"{e164} no longer restricted for account {args.account_id}")
    return 0


def cmd_list(config: Config, args: argparse.Namespace) -> int:
    wanted = None if args.account_id is None else [args.account_id]
    with _sessions(config)() as session:
        for row in restricted_store.listed(session, wanted):
            print(f"{row.account_id}\t{row.e164}\t{row.created_at:%Y-%m-%d %H:%M}")
    return 0


def register(sub: Any, command: Any) -> None:
    noun = sub.add_parser(
        "restrict", help="callers never recorded, transcribed, analysed or sent to ad platforms"
    )
    verbs = noun.add_subparsers(dest="action", required=True)
    p = command("add", cmd_add, "restrict a caller's number for an account", verbs)
    p.add_argument("account_id", type=int)
    p.add_argument("number", help="in any format; kept as E.164")
    p = command("list", cmd_list, "the restricted numbers (of one account)", verbs)
    p.add_argument("account_id", type=int, nargs="?")
    p = command("remove", cmd_remove, "lift a caller's restriction", verbs)
    p.add_argument("account_id", type=int)
    p.add_argument("number")
