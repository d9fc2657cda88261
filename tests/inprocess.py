"""The appliance command run in this process, through appliance.cli.main (the function the
installed `appliance` script calls), as if it were a process of its own: only the environment
it is given, its own stdin, stdout and stderr, and the process left as it was found. A process
of its own would spend seconds importing the appliance before each command."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from appliance import cli
from tests.harness import time_bound

HANG = 60  # seconds: a bound that catches a hang


def in_process(
    args: Sequence[str], stdin: str | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """cli.main with the environment of `env` alone (no APPLIANCE_ setting of pytest's), `stdin`,
    and its own stdout and stderr; the process must be left as it was found."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("APPLIANCE_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        before = process_state()
        bound = time_bound(HANG, Hang(f"no end within {HANG} s"))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), bound:
            code = exit_code(args)
        after = process_state()
        assert after == before, f"appliance {args} left the process changed: {before} -> {after}"
    return subprocess.CompletedProcess(["appliance", *args], code, out.getvalue(), err.getvalue())


def exit_code(args: Sequence[str]) -> int:
    """How `appliance ARGS` ends: main's return, SystemExit's code (argparse's errors,
    --version), or a traceback on stderr and 1, as Python ends on an uncaught exception."""
    try:
        return cli.main(list(args))
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1


def process_state() -> tuple[Any, ...]:
    """What a command could change for the commands run after it in this process."""
    umask = os.umask(0o077)
    os.umask(umask)
    root = logging.getLogger()
    return (
        os.getcwd(),
        umask,
        os.getpriority(os.PRIO_PROCESS, 0),
        list(root.handlers),
        [logging.getLogger(name).level for name in (root.name, *cli.QUIETER)],
        signal.getsignal(signal.SIGINT),
    )


class Hang(BaseException):
    """A command ran past HANG (not an Exception: no `except Exception` of a command takes it)."""
