"""Files the package ships beside the code: in a checkout they sit at the repository root, in an
installed package under <prefix>/share/appliance (setup.cfg data_files)."""

from __future__ import annotations

import sys
from pathlib import Path

from appliance.config import ConfigError


def shipped_dir(name: str) -> Path:
    for candidate in (
        Path(__file__).resolve().parents[1] / name,
        Path(sys.prefix) / "share" / "appliance" / name,
    ):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"{name}/ not found beside the code or in {sys.prefix}/share/appliance")
