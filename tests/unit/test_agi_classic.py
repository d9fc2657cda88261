"""`appliance-agi`, the classic agi-bin entry point, as Asterisk runs it (a process reading the
AGI environment on stdin, commands on stdout), in front of the controller's real FastAGI
server: it relays only SET VARIABLE and GET FULL VARIABLE, and exits 0 whatever happens."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from appliance.asterisk.fastagi import FastAgiServer
from appliance.integrator import agi_bin
from tests.harness import free_port

ENV = (
    "agi_request: appliance-agi\nagi_channel: PJSIP/carrier-00000001\nagi_dnid: 12025550123\n"
    "agi_callerid: 13125550111\nagi_arg_1: track\nagi_arg_2: +12025550123\n\n"
)
LINKEDID = "200 result=1 (1700000000.1)\n"
OK = "200 result=1\n"


async def classic(port: int, *args: str, replies: str = "") -> tuple[int, list[str], float]:
    """Run appliance-agi as Asterisk would; its exit code, the commands it sent, how long."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.integrator.classic", "--host", "127.0.0.1",
        "--port", str(port), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate((ENV + replies).encode()), 20)
    return proc.returncode, out.decode().splitlines(), time.monotonic() - started


async def test_classic_entry_point_relays_the_controller_s_commands_through_pyst2():
    seen = []

    async def track(request, channel):
        seen.append(request)
        linkedid = await channel.get_full_variable("${CHANNEL(linkedid)}")
        return {"APPLIANCE_CALL_ID": linkedid or "", "APPLIANCE_READY": "1"}

    server = FastAgiServer({"track": track}, timeout=2, allowed_uids={os.getuid()})
    await server.start("127.0.0.1", 0)
    try:
        code, sent, _ = await classic(
            server.port, "track", "+12025550123", replies=LINKEDID + OK * 3
        )
    finally:
        await server.close()
    assert code == 0 and server.answered == 1
    assert sent == [
        'GET FULL VARIABLE "${CHANNEL(linkedid)}"',
        'SET VARIABLE APPLIANCE_CALL_ID "1700000000.1"',
        'SET VARIABLE APPLIANCE_READY "1"',
    ]
    (request,) = seen
    assert request.script == "track" and request.args == ("+12025550123",)
    assert request.get("dnid") == "12025550123" and request.get("callerid") == "13125550111"


async def test_classic_entry_point_with_the_controller_down_sets_nothing_and_exits_0():
    code, sent, took = await classic(free_port(), "track")
    assert code == 0 and sent == [] and took < 5


@pytest.mark.parametrize("script", ["../track", "TRACK", "track;id", "", "x" * 50])
async def test_classic_entry_point_refuses_a_script_that_is_no_script_s_name(script):
    code, sent, _ = await classic(free_port(), script)
    assert code == 0 and sent == []


async def test_classic_entry_point_relays_nothing_but_variables():
    """Whatever holds the port may answer anything: only the two commands reach Asterisk, and
    SET VARIABLE only of the appliance's own variables."""
    answered = []

    async def forged(reader, writer):
        while (await reader.readline()).strip():
            pass
        for command in [
            "EXEC System id",
            'SET VARIABLE APPLIANCE_X "a" "b"',
            'SET VARIABLE A;B "c"',
            'GET FULL VARIABLE "${SHELL(id)}" "x"',
            'GET FULL VARIABLE "${SHELL(id)}"',
            'SET VARIABLE TRANSFER_CONTEXT "from-internal"',
            'SET VARIABLE __DYNAMIC_FEATURES "automon"',
            'SET VARIABLE APPLIANCE_OK "fine"',
            'SET VARIABLE APPLIANCE_TAGS "fine"',
        ]:
            writer.write(command.encode() + b"\n")
            answered.append((await reader.readline()).decode().strip())
        writer.close()

    server = await asyncio.start_server(forged, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code, sent, _ = await classic(port, "track", replies=OK)
    finally:
        server.close()
    assert code == 0 and sent == ['SET VARIABLE APPLIANCE_TAGS "fine"']
    assert answered == ["510 Invalid or unknown command"] * 8 + ["200 result=1"]


def test_the_agi_bin_wrapper_execs_the_entry_point_with_the_controller_s_address(tmp_path):
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    argv = agi_bin.command("127.0.0.1", 573, str(python))
    assert argv[1:] == [
        "-m",
        "appliance.integrator.classic",
        "--host",
        "127.0.0.1",
        "--port",
        "573",
    ]
    (tmp_path / "bin" / "appliance-agi").touch()
    argv = agi_bin.command("127.0.0.1", 573, str(python))
    assert argv == [str(tmp_path / "bin" / "appliance-agi"), "--host", "127.0.0.1", "--port", "573"]
    text = agi_bin.wrapper(argv)
    assert text.startswith("#!/bin/sh\n") and text.endswith(' --port 573 "$@"\n')
