"""`appliance plugins list`: every plugin (built-in, entry point, drop-in file), the hooks it
implements, whether it loads (or why it is refused), and the running controller's failures
and timeouts since its start when its status file is readable."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.calls.model import RoutingTable
from appliance.config import Config
from appliance.plugins import builtin, status
from appliance.plugins.manager import PluginManager

COLUMNS = ("name", "from", "hooks", "state", "failures", "timeouts")


def describe(config: Config) -> list[dict[str, Any]]:
    """The plugins as this process loads them now, with the controller's counters."""
    plugins = PluginManager(config.plugins.timeout)
    plugins.add_builtin(builtin.Routing(RoutingTable), builtin.NAME)
    if config.plugins.enabled:
        plugins.load(Path(config.plugins.dir))
    running = status.read(config)
    counted = status.counters(running)
    listed = []
    for plugin in plugins.listing():
        seen = counted.get((plugin["name"], plugin["origin"]))
        for key in ("failures", "timeouts", "skipped", "invalid"):
            plugin[key] = seen.get(key) if seen is not None else None
        listed.append(plugin)
    return listed


def row(plugin: dict[str, Any]) -> tuple[object, ...]:
    state = plugin["state"] + (f": {plugin['reason']}" if plugin["reason"] else "")
    return (
        plugin["name"],
        plugin["origin"],
        " ".join(plugin["hooks"]),
        state,
        plugin["failures"],
        plugin["timeouts"],
    )


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    from appliance import cli  # the table printer; imported late (cli imports this module)

    def plugins_list(config: Config, _args: argparse.Namespace) -> int:
        cli._table(COLUMNS, [row(p) for p in describe(config)])
        if not config.plugins.enabled:
            print("plugins.enabled is off: only the built-in behaviour runs")
        return 0

    parser = sub.add_parser("plugins", help="Python plugins").add_subparsers(
        dest="action", required=True
    )
    command("list", plugins_list, "plugins, their hooks, state and failures", parser)
