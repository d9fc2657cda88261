"""The command line of the privacy lifecycle: each module adds its own subcommands."""

from __future__ import annotations

from typing import Any

from appliance.privacy import person_commands


def register(sub: Any, command: Any) -> None:
    """Add the privacy subcommands to the `appliance` parser (`command` as in cli.py)."""
    person_commands.register(sub, command)
