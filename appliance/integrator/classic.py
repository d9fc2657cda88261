"""`appliance-agi`: the integrator AGI scripts for dialplans that run AGI from agi-bin rather
than over the network: `AGI(appliance-agi,<script>,<args...>)`.

Asterisk starts it as its own user (which the controller's peer check accepts). It reads the
AGI environment with pyst2, asks the controller's FastAGI server the same request
(agi_network_script=<script>), and relays the controller's commands to the channel, one at a
time: SET VARIABLE of the appliance's own variables (calls/variables.py), and GET FULL
VARIABLE of the call's linkedid only; anything else is answered 510 and never reaches
Asterisk (whatever holds the port when the controller is down cannot set TRANSFER_CONTEXT,
DYNAMIC_FEATURES or any other variable that changes what the channel may do). It exits 0
quickly whatever happens: with the controller down it sets nothing and the dialplan goes on.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

from appliance.asterisk.agi_protocol import MAX_HEADERS, MAX_LINE
from appliance.calls.variables import VARIABLES
from appliance.config import AgiConfig

SCRIPT = re.compile(r"[a-z]{1,20}")
HEADER = re.compile(r"agi_[a-z0-9_]{1,40}")
SET = re.compile(r'SET VARIABLE ([A-Za-z_][A-Za-z0-9_]{0,79}) ("(?:[^"\\]|\\.)*")')
GET = re.compile(r'GET FULL VARIABLE "([^"\\]{1,200})"')
SETTABLE = frozenset(VARIABLES.values())  # what the scripts set: APPLIANCE_* only
READABLE = frozenset({"${CHANNEL(linkedid)}"})  # what the scripts ask; never ${SHELL(...)}
MAX_COMMANDS = 64
CONNECT_SECONDS = 0.5


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="appliance-agi", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="the appliance's config file (for agi.host, agi.port)")
    parser.add_argument("--host", help="the controller's FastAGI address (default: agi.host)")
    parser.add_argument("--port", type=int, help="its FastAGI port (default: agi.port)")
    parser.add_argument("script", help="track, lookup, tag, score, note or route")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return parser.parse_args(argv)


def address(options: argparse.Namespace) -> tuple[str, int, float]:
    """Where the controller listens and its time budget: the options, else the appliance's
    config read as the CLI reads it, else the defaults (Asterisk's user may not read it)."""
    host, port, budget = AgiConfig.host, AgiConfig.port, AgiConfig.request_timeout
    if options.port is None or options.host is None:
        try:
            from appliance.config import load

            agi = load(options.config).agi
            host, port, budget = agi.host, agi.port, agi.request_timeout
        except Exception:  # noqa: S110 - unreadable config: the defaults
            pass
    return options.host or host, options.port or port, budget


def request(env: Mapping[str, str], script: str, args: Sequence[str], url: str) -> bytes:
    """The FastAGI request: the channel's AGI environment, this script and its arguments."""
    headers = {
        key: value.replace("\r", "").replace("\n", "")
        for key, value in env.items()
        if HEADER.fullmatch(key) and not key.startswith(("agi_arg_", "agi_network"))
    }
    headers.pop("agi_request", None)
    headers.update({"agi_network": "yes", "agi_network_script": script, "agi_request": url})
    headers.update({f"agi_arg_{n}": arg for n, arg in enumerate(args, 1)})
    lines = [f"{k}: {v}"[: MAX_LINE - 1] for k, v in list(headers.items())[: MAX_HEADERS - 1]]
    return ("\n".join(lines) + "\n\n").encode("utf-8", "replace")


def reply(agi: Any, command: str) -> str:
    """Run one command of the controller's on the channel; what Asterisk answered."""
    if (found := SET.fullmatch(command)) and found.group(1) in SETTABLE:
        agi.execute("SET VARIABLE", found.group(1), found.group(2))  # already quoted
        return "200 result=1"
    if (found := GET.fullmatch(command)) and found.group(1) in READABLE:
        value = agi.get_full_variable(found.group(1))
        return f"200 result=1 ({value})" if value else "200 result=0"
    return "510 Invalid or unknown command"


def relay(agi: Any, options: argparse.Namespace) -> None:
    if not SCRIPT.fullmatch(options.script):
        return
    host, port, budget = address(options)
    deadline = time.monotonic() + budget + CONNECT_SECONDS
    url = f"agi://{host}:{port}/{options.script}"
    with socket.create_connection((host, port), timeout=CONNECT_SECONDS) as conn:
        conn.sendall(request(agi.env, options.script, options.args, url))
        stream = conn.makefile("rb")
        for _ in range(MAX_COMMANDS):
            conn.settimeout(max(0.01, deadline - time.monotonic()))
            line = stream.readline(MAX_LINE)
            if not line:
                return
            command = line.decode("utf-8", "replace").strip()
            conn.sendall((reply(agi, command) + "\n").encode())


def main(argv: Sequence[str] | None = None, stdin: IO[str] | None = None) -> int:
    try:
        options = parse(sys.argv[1:] if argv is None else argv)
        from asterisk.agi import AGI  # pyst2

        with open(os.devnull, "w") as quiet:  # pyst2 traces every line it reads on stderr
            agi = AGI(stdin=stdin or sys.stdin, stdout=sys.stdout, stderr=quiet)
            relay(agi, options)
    except BaseException:  # noqa: S110 - the call goes on whatever happened here
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
