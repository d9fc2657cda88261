"""`appliance plugins list`: every plugin (built-in, entry point, drop-in file), the hooks it
implements, whether it loaded (or why it is refused), and its failures and timeouts since
the start: what the running controller wrote to its status file. Without that file, the
plugins the controller would find, `found`, unloaded: this command runs no plugin code (run
with sudo, it would run as root what the controller runs as its own user)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.calls.model import RoutingTable
from appliance.config import Config
from appliance.plugins import builtin, loading, status
from appliance.plugins.manager import PluginInfo, PluginManager

COLUMNS = ("name", "from", "hooks", "state", "failures", "timeouts")
COUNTERS = ("failures", "timeouts", "skipped", "invalid")


def describe(config: Config) -> list[dict[str, Any]]:
    running = status.read(config)
    if running is not None:
        return [_listed(p) for p in running if isinstance(p, dict)]
    plugins = PluginManager(config.plugins.timeout)  # the built-in one is the appliance's own
    plugins.add_builtin(builtin.Routing(RoutingTable), builtin.NAME)
    found = list(plugins.plugins.values())
    if config.plugins.enabled:
        directory = Path(config.plugins.dir)
        for item in [*loading.entry_points(), *loading.dropins(directory, owners(config))]:
            if isinstance(item, tuple):
                found.append(PluginInfo(item[0], item[1], (), "refused", item[2]))
            else:
                found.append(PluginInfo(item.name, item.origin, (), "found"))
    return [info.view() | dict.fromkeys(COUNTERS) for info in found]


def owners(config: Config) -> frozenset[int]:
    """Whom the controller trusts with a drop-in file: root and its own user (the data dir's
    owner), whoever runs this command."""
    try:
        return frozenset({0, config.data_dir.stat().st_uid})
    except OSError:
        return frozenset({0, os.geteuid()})


def _listed(plugin: dict[str, Any]) -> dict[str, Any]:
    """One entry of the status file (the controller's writing: shown as text only)."""
    hooks = plugin.get("hooks")
    return {
        "name": str(plugin.get("name")),
        "origin": str(plugin.get("origin")),
        "hooks": [str(h) for h in hooks] if isinstance(hooks, list) else [],
        "state": str(plugin.get("state")),
        "reason": str(plugin.get("reason") or ""),
    } | {key: plugin.get(key) for key in COUNTERS}


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
