"""The command line of the privacy lifecycle: each module adds its own subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.config import Config
from appliance.db import engine as db
from appliance.privacy import (
    flows,
    person_commands,
    restrict_commands,
    retention_commands,
)


def cmd_flows(config: Config, _args: argparse.Namespace) -> int:
    engine = db.make_engine(config.database.url)
    try:
        with db.session_factory(engine)() as session:
            found = flows.flows(session, config.smtp.host)
    finally:
        engine.dispose()
    for flow in found:
        print(f"{'ON ' if flow.on else 'off'}  {flow.name}: {flow.sends} [{flow.where}]")
    return 0


def register(sub: Any, command: Any) -> None:
    """Add the privacy subcommands to the `appliance` parser (`command` as in cli.py)."""
    privacy = sub.add_parser("privacy", help="the privacy lifecycle").add_subparsers(
        dest="action", required=True
    )
    command("flows", cmd_flows, "every way data can leave this box, and whether it is on", privacy)
    retention_commands.register(sub, command)
    restrict_commands.register(sub, command)
    person_commands.register(sub, command)
