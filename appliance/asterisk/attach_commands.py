"""`appliance attach snippet`: what to paste into the site's own Asterisk or FreePBX."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from appliance.asterisk import attach
from appliance.config import ATTACHED, Config, resolve_secret


def cmd_attach_snippet(config: Config, args: argparse.Namespace) -> int:
    secret = resolve_secret("ami.secret", config.ami.secret)  # the one 'appliance init' made
    snippet = attach.snippet(config, secret, freepbx=args.freepbx)
    if not config.attached:
        print(
            f"note: asterisk.mode is {config.asterisk.mode}; set it to {ATTACHED} once the "
            "site's Asterisk has these",
            file=sys.stderr,
        )
    parts = {"manager": snippet.manager, "dialplan": snippet.dialplan}
    shown = [args.part] if args.part else list(parts)
    print("\n".join(parts[name] for name in shown), end="")
    return 0


def register(sub: Any, command: Any) -> None:
    """Add the attach subcommands to the `appliance` parser (`command` as in cli.py)."""
    attach_parser = sub.add_parser(
        "attach", help="bring your own PBX (asterisk.mode = attached)"
    ).add_subparsers(dest="action", required=True)
    p = command(
        "snippet",
        cmd_attach_snippet,
        "print the manager user and the dialplan context to add to the site's Asterisk",
        attach_parser,
    )
    p.add_argument(
        "--freepbx",
        action="store_true",
        help="for FreePBX: the dialled number from FROM_DID, a custom destination with Return",
    )
    p.add_argument("--part", choices=("manager", "dialplan"), help="print only this part")
