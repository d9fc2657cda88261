"""The running controller's plugins and their counters, in {data_dir}/plugins.json, for
`appliance plugins list` (another process). Written atomically, readable by its group."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

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
    text = json.dumps({"plugins": plugins.listing()}, sort_keys=True)
    temporary = target.with_name(f".{FILE}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, target)


def read(config: Config) -> list[dict[str, Any]] | None:
    """The controller's last listing; None when there is none or it cannot be read."""
    try:
        data = json.loads(path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = data.get("plugins") if isinstance(data, dict) else None
    return found if isinstance(found, list) else None


def counters(listed: list[dict[str, Any]] | None) -> dict[tuple[str, str], dict[str, Any]]:
    return {(str(p.get("name")), str(p.get("origin"))): p for p in listed or []}
