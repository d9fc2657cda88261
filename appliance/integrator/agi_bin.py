"""The `appliance-agi` wrapper in Asterisk's agi-bin directory (pure: the script's text), so
that a dialplan runs `AGI(appliance-agi,<script>,<args...>)`. `config render` writes it
(scripts/install runs that, and so do the tests) with the controller's FastAGI address baked
in: Asterisk's user cannot read the appliance's config."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

NAME = "appliance-agi"
DIR = "agi-bin"  # under asterisk.dir; asterisk.conf's astagidir


def command(host: str, port: int, python: str = sys.executable) -> list[str]:
    """The venv's `appliance-agi` (beside its interpreter), else the module it runs."""
    script = Path(python).parent / NAME
    run = [str(script)] if script.exists() else [python, "-m", "appliance.integrator.classic"]
    return [*run, "--host", host, "--port", str(port)]


def wrapper(argv: Sequence[str]) -> str:
    return (
        "#!/bin/sh\n"
        "# Written by 'appliance config render': the appliance's AGI scripts for dialplans that\n"
        "# run AGI from agi-bin, AGI(appliance-agi,<script>,<args...>). Rewritten on render.\n"
        f'exec {shlex.join(argv)} "$@"\n'
    )
