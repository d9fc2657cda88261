"""Post-dial delay: INVITE sent by the carrier -> 180 Ringing seen, through the real Asterisk.

Five comparisons in the same run against the same Asterisk, with the controller running and
recording every call:
- a tracking number whose route is compiled into the dialplan, against a static extension
  that dials the same destination (the cost of the appliance's dialplan: tagging the call,
  the route's user event, its CDR fields);
- a tracking number whose route is dynamic (the controller answers over FastAGI, then the
  compiled route connects), against the same exchange with a bare asyncio FastAGI responder
  (bench/bare_agi.py), the floor any FastAGI decision starts from;
- a tracking number of an account whose restrict list holds 1,000 callers (the caller ID
  looked up in the compiled list, within the step that tags the call), against the compiled
  route of an account without one;
- a route a drop-in plugin claims and decides (its call_started answers at the dynamic step,
  in a worker thread, within the plugin timeout), against a dynamic route it does not claim.
  The plugin is installed for the whole run, so every dynamic step (that route's too) calls
  its call_started, which answers nothing there: the second comparison's dynamic route
  includes that call;
- an integrator's own context that calls the AGI script `track` (the call's record written
  before Dial) and dials, against the same context without it.
Bursts of 1, 10 and 50 concurrent call setups, one second apart, the paths taking turns; times
come from SIPp's message trace (microseconds).

    .venv/bin/python -m bench.post_dial_delay
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import report
from tests.harness import SIPP_DIR, Stack, asterisk_root, free_port, sipp_call

STATIC = "12025550100"
ROUTED = "12025550123"
DYNAMIC = "12025550124"
BARE = "12025550111"
LISTED = "12025550125"  # an account with a restrict list (not of the bench's caller)
PLUGGED = "12025550126"  # its route is claimed and decided by the bench's plugin
TRACKED = "12025550127"  # an integrator's context: AGI track, then Dial
UNTRACKED = "12025550128"  # the same context without track
LIST_SIZE = 1000
PATHS = {  # number -> what its path is, in the report
    STATIC: "static dialplan",
    ROUTED: "compiled route",
    BARE: "bare FastAGI",
    DYNAMIC: "dynamic route",
    LISTED: f"{LIST_SIZE} restricted",
    PLUGGED: "plugin decides",
    UNTRACKED: "own context",
    TRACKED: "own context + track",
}
COMPARISONS = (  # (baseline, candidate)
    (STATIC, ROUTED),
    (BARE, DYNAMIC),
    (ROUTED, LISTED),
    (DYNAMIC, PLUGGED),
    (UNTRACKED, TRACKED),
)
PLUGIN = """
from appliance.plugins import hookimpl


@hookimpl
def claims_route(route):
    return route["name"] == "Plugged"


@hookimpl
def call_started(call, deciding):
    if deciding and call["route_name"] == "Plugged":
        return {"route": call["route_id"], "tags": ["bench"]}
    return None
"""
_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


def setup(stack: Stack, bare_port: int) -> None:
    stack.appliance("init")
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    forward = ("--forward", "+12025550199", "--trunk", "carrier")
    stack.appliance("route", "add", "Bench", *forward)
    stack.appliance("route", "add", "Hook", *forward, "--dynamic")
    stack.appliance("number", "add", f"+{ROUTED}", "--route", "Bench")
    stack.appliance("number", "add", f"+{DYNAMIC}", "--route", "Hook")
    stack.appliance("account", "add", "Listed")
    stack.appliance("route", "add", "Listed", *forward, "--account", "2")
    stack.appliance("number", "add", f"+{LISTED}", "--route", "Listed", "--account", "2")
    with sqlite3.connect(stack.database) as db:
        db.executemany(
            "INSERT INTO restricted_numbers (account_id, e164, created_at) VALUES (2, ?, ?)",
            [(f"+1646555{n:04d}", "2026-11-30 00:00:00.000000") for n in range(LIST_SIZE)],
        )
    stack.appliance("route", "add", "Plugged", *forward, "--dynamic")
    stack.appliance("number", "add", f"+{PLUGGED}", "--route", "Plugged")
    plugins = stack.data_dir.parent / "plugins.d"
    plugins.mkdir(mode=0o755)
    (plugins / "bench.py").write_text(PLUGIN)
    (plugins / "bench.py").chmod(0o644)
    stack.extra_env["APPLIANCE_PLUGINS_DIR"] = str(plugins)
    stack.appliance("config", "render")
    local = stack.asterisk_dir_on_host / "etc" / "extensions_local.conf"
    agi = f"agi://127.0.0.1:{bare_port}/route,1,${{CHANNEL(linkedid)}}"
    track = f"agi://127.0.0.1:{stack.agi_port}/track,+{ROUTED}"
    local.write_text(
        "[appliance-inbound](+)\n"
        f"exten => {STATIC},1,Dial(PJSIP/+12025550199@carrier,30)\n"
        f"exten => {BARE},1,AGI({agi})\n"
        " same => n,Dial(PJSIP/+12025550199@carrier,30)\n"
        f"exten => {TRACKED},1,AGI({track})\n"
        " same => n,Dial(PJSIP/+12025550199@carrier,30)\n"
        f"exten => {UNTRACKED},1,NoOp()\n"
        " same => n,Dial(PJSIP/+12025550199@carrier,30)\n"
    )
    stack.start_asterisk()
    stack.start_controller()


def post_dial_delays(trace: str) -> list[float]:
    """Milliseconds from each INVITE sent to its first 180 received, per Call-ID."""
    sent: dict[str, float] = {}
    ringing: dict[str, float] = {}
    stamp, direction, pending = 0.0, "", ""
    for line in trace.splitlines():
        if match := _STAMP.match(line):
            stamp = dt.datetime.fromisoformat(match.group(1)).timestamp()
        elif line.startswith("UDP message"):
            direction = "sent" if "sent" in line else "received"
        elif line.startswith("INVITE ") and direction == "sent":
            pending = "invite"
        elif line.startswith("SIP/2.0 180") and direction == "received":
            pending = "ringing"
        elif line.startswith("SIP/2.0") or line.startswith(("ACK", "BYE")):
            pending = ""
        elif line.lower().startswith("call-id:"):
            call_id = line.split(":", 1)[1].strip()
            if pending == "invite":
                sent.setdefault(call_id, stamp)
            elif pending == "ringing":
                ringing.setdefault(call_id, stamp)
            pending = ""
    return [(ringing[c] - sent[c]) * 1000 for c in sent if c in ringing]


def burst(stack: Stack, number: str, size: int) -> list[float]:
    result = sipp_call(stack, number, "13125550111", "Bench", talk_ms=100, calls=size, rate=1000)
    delays = post_dial_delays(result.messages)
    if result.returncode != 0 or len(delays) != size:
        raise RuntimeError(f"{number}: {len(delays)} of {size} calls rang")
    return delays


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(data_dir=Path(tmp) / "data", root=asterisk_root())
        stack.extra_env["APPLIANCE_LOG_LEVEL"] = "warning"
        phone = None
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.bare_agi", str(bare_port)])
        try:
            setup(stack, bare_port)
            phone = subprocess.Popen(
                [
                    "sipp",
                    "-sf",
                    str(SIPP_DIR / "phone_answer.xml"),
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(stack.phone_port),
                    "-nostdin",
                ],
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            rows: dict[tuple[str, str], list] = {pair: [] for pair in COMPARISONS}
            for size, rounds in ((1, 50), (10, 20), (50, 8)):
                samples: dict[str, list[float]] = {number: [] for number in PATHS}
                for number in samples:  # warm up every path
                    burst(stack, number, size)
                for _ in range(rounds):
                    for number, values in samples.items():
                        values += burst(stack, number, size)
                        time.sleep(1)  # let every call of the burst end and be written
                for base, cand in COMPARISONS:
                    rows[base, cand].append((f"{size} concurrent", samples[base], samples[cand]))
            title = "Post-dial delay, INVITE sent -> 180 Ringing seen"
            for (base, cand), compared in rows.items():
                print(report(title, "ms", compared, PATHS[base], PATHS[cand]))
                print()
            tagged = stack.query("SELECT count(*) AS n FROM call_tags WHERE tag = 'bench'")
            print(f"calls the plugin tagged: {tagged[0]['n']}")
        finally:
            bare.kill()
            bare.wait()
            if phone is not None:
                phone.kill()
                phone.wait()
            stack.close()


if __name__ == "__main__":
    main()
