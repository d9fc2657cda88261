"""Small JSON files in which a long-running process tells the others what it is doing (its
counters, its plugins): written atomically, readable by its group, never trusted to parse."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write(target: Path, data: dict[str, Any]) -> None:
    """Replace `target` at once (readers see the old file or the new, never half of one);
    OSError when it cannot be written."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, sort_keys=True)
    os.replace(temporary, target)


def read(source: Path) -> dict[str, Any] | None:
    """The object in `source`; None when there is none or it cannot be read."""
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
