"""The running controller's plugins and their counters, in {data_dir}/plugins.json, for
`appliance plugins list` (another process). Written atomically, readable by its group."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from appliance import statusfile
from appliance.config import Config
from appliance.plugins.manager import PluginManager

FILE = "plugins.json"
log = logging.getLogger(__name__)


def path(config: Config) -> Path:
    return config.data_dir / FILE


def write(config: Config, plugins: PluginManager) -> None:
    """Best effort: the listing is a convenience, never a reason for the controller to stop."""
    try:
        _write(path(config), plugins)
    except OSError as exc:
        log.warning("%s cannot be written: %s", path(config), exc.strerror)


def _write(target: Path, plugins: PluginManager) -> None:
    statusfile.write(target, {"plugins": plugins.listing()})


def read(config: Config) -> list[dict[str, Any]] | None:
    """The controller's last listing; None when there is none or it cannot be read."""
    found = (statusfile.read(path(config)) or {}).get("plugins")
    return found if isinstance(found, list) else None


def counters(listed: list[dict[str, Any]] | None) -> dict[tuple[str, str], dict[str, Any]]:
    return {(str(p.get("name")), str(p.get("origin"))): p for p in listed or []}
